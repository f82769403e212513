// Package metricstest checks a binary's Prometheus metrics in tests: a Registry that remembers
// every collector registered in it, so that a metric is seen (and linted) even before it has a
// series, and Lint, which runs promlint (the Prometheus project's metric name and help linter)
// over them.
package metricstest

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

// Registry is a prometheus.Registerer and Gatherer that remembers its collectors.
type Registry struct {
	reg *prometheus.Registry

	mu         sync.Mutex
	collectors []prometheus.Collector
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{reg: prometheus.NewRegistry()} }

// Register registers c and remembers it.
func (r *Registry) Register(c prometheus.Collector) error {
	if err := r.reg.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.collectors = append(r.collectors, c)
	return nil
}

// MustRegister registers the collectors and panics on the first error, like prometheus.Registry.
func (r *Registry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister unregisters c.
func (r *Registry) Unregister(c prometheus.Collector) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.collectors = slices.DeleteFunc(r.collectors, func(x prometheus.Collector) bool { return x == c })
	return r.reg.Unregister(c)
}

// Gather gathers the registered collectors.
func (r *Registry) Gather() ([]*dto.MetricFamily, error) { return r.reg.Gather() }

// Described returns the name of every metric the registered collectors describe, sorted.
func (r *Registry) Described() ([]string, error) {
	r.mu.Lock()
	cs := slices.Clone(r.collectors)
	r.mu.Unlock()
	var names []string
	for _, c := range cs {
		for _, d := range describe(c) {
			name, _, err := parseDesc(d)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// Families gathers a family for every metric the registered collectors describe. A vector
// without series gets one, with placeholder label values, so that its name, help and type are
// known (the registry is a test's own: nothing else reads it). A described metric that still has
// no series, such as a custom collector with nothing to report, is an error: the test must give
// it something to report, or it would escape the linter.
func (r *Registry) Families() ([]*dto.MetricFamily, error) {
	r.mu.Lock()
	cs := slices.Clone(r.collectors)
	r.mu.Unlock()
	for _, c := range cs {
		for _, d := range describe(c) {
			_, labels, err := parseDesc(d)
			if err != nil {
				return nil, err
			}
			placeholders := make([]string, labels)
			for i := range placeholders {
				placeholders[i] = "placeholder"
			}
			switch v := c.(type) {
			case *prometheus.CounterVec:
				v.WithLabelValues(placeholders...)
			case *prometheus.GaugeVec:
				v.WithLabelValues(placeholders...)
			case *prometheus.HistogramVec:
				v.WithLabelValues(placeholders...)
			case *prometheus.SummaryVec:
				v.WithLabelValues(placeholders...)
			}
		}
	}
	mfs, err := r.reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("gathering: %w", err)
	}
	described, err := r.Described()
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, name := range described {
		if !slices.ContainsFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == name }) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return mfs, fmt.Errorf("metrics without series, not linted (give them something to report): %s", strings.Join(missing, ", "))
	}
	return mfs, nil
}

// Lint runs promlint's default checks over mfs and returns the problems, one per line, sorted
// ("name: text").
func Lint(mfs []*dto.MetricFamily) ([]string, error) {
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		return nil, fmt.Errorf("linting: %w", err)
	}
	out := make([]string, 0, len(problems))
	for _, p := range problems {
		out = append(out, p.Metric+": "+p.Text)
	}
	slices.Sort(out)
	return out, nil
}

// Names returns the family names of mfs, sorted.
func Names(mfs []*dto.MetricFamily) []string {
	out := make([]string, 0, len(mfs))
	for _, mf := range mfs {
		out = append(out, mf.GetName())
	}
	slices.Sort(out)
	return out
}

func describe(c prometheus.Collector) []*prometheus.Desc {
	ch := make(chan *prometheus.Desc)
	var out []*prometheus.Desc
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		out = append(out, d)
	}
	return out
}

// descRE reads the metric name and the variable labels out of Desc.String, the only way
// client_golang shows them.
var descRE = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"),.* variableLabels: \{([^}]*)\}\}$`)

// errDesc is returned for a Desc that is not a metric description (an invalid Desc).
var errDesc = errors.New("unreadable metric description")

func parseDesc(d *prometheus.Desc) (name string, labels int, err error) {
	m := descRE.FindStringSubmatch(d.String())
	if m == nil {
		return "", 0, fmt.Errorf("%w: %s", errDesc, d)
	}
	name, err = strconv.Unquote(m[1])
	if err != nil {
		return "", 0, fmt.Errorf("%w: %s: %w", errDesc, d, err)
	}
	if m[2] != "" {
		labels = strings.Count(m[2], ",") + 1
	}
	return name, labels, nil
}
