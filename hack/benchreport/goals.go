package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Goal is a target from an issue for one figure of the report.
type Goal struct {
	Name   string  // the figure's name in report.json
	Op     string  // "<=", ">=" or "=="
	Target float64 // in the figure's unit
	Text   string  // what the goal is, and where it comes from
}

// Verdict is a goal next to what was measured.
type Verdict struct {
	Goal
	Measured *Metric // nil when the figure is not in the report
	Met      bool
}

// parseGoals reads goals, one per line: name, operator, target and text, separated by tabs.
// Empty lines and lines starting with # are skipped.
func parseGoals(r io.Reader) ([]Goal, error) {
	var out []Goal
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		f := strings.Split(s, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("goals line %d: want 4 tab-separated fields (name, <=|>=|==, target, text), got %d", line, len(f))
		}
		switch f[1] {
		case "<=", ">=", "==":
		default:
			return nil, fmt.Errorf("goals line %d: operator %q: want <=, >= or ==", line, f[1])
		}
		v, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			return nil, fmt.Errorf("goals line %d: target %q: %w", line, f[2], err)
		}
		out = append(out, Goal{Name: f[0], Op: f[1], Target: v, Text: f[3]})
	}
	return out, sc.Err()
}

// judge compares each goal with the figure of the same name.
func judge(ms []Metric, goals []Goal) []Verdict {
	byName := map[string]Metric{}
	for _, m := range ms {
		byName[m.Name] = m
	}
	out := make([]Verdict, 0, len(goals))
	for _, g := range goals {
		v := Verdict{Goal: g}
		if m, ok := byName[g.Name]; ok {
			v.Measured = &m
			switch g.Op {
			case "<=":
				v.Met = m.Value <= g.Target
			case ">=":
				v.Met = m.Value >= g.Target
			case "==":
				v.Met = m.Value == g.Target
			}
		}
		out = append(out, v)
	}
	return out
}

// renderGoals writes the verdicts as a Markdown table.
func renderGoals(b *strings.Builder, vs []Verdict) {
	b.WriteString("\n## Goals\n\n| goal | figure | target | measured | met |\n|---|---|---|---:|---|\n")
	for _, v := range vs {
		measured, met := "not measured", "no"
		if v.Measured != nil {
			measured = strconv.FormatFloat(v.Measured.Value, 'f', -1, 64) + " " + v.Measured.Unit
			if v.Met {
				met = "yes"
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s %s | %s | %s |\n", v.Text, v.Name, v.Op, strconv.FormatFloat(v.Target, 'f', -1, 64), measured, met)
	}
}
