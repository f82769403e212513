package testenv

import (
	"bufio"
	"cmp"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Resident is which parts of a binary are resident in a process that runs it: the bytes of each
// of its sections (".text", ".rodata", ".gopclntab", ...) whose pages are mapped in the process
// now, and the bytes of each package's code on those pages.
//
// A resident page was not necessarily touched: on a fault in a file mapping, Linux maps the
// pages of the page cache around the faulting one as well (fault-around, 64 KiB aligned by
// default), so one call into a package can make 16 pages resident.
type Resident struct {
	Sections map[string]int64
	// Code is by package import path, from the function table (.gopclntab), which a stripped
	// binary keeps; a page shared by several packages counts for each the bytes of it that are its.
	Code map[string]int64
}

// ResidentBinary reads which pages of the Go binary exe are mapped in process pid (/proc/PID/maps
// and /proc/PID/pagemap; reading another process's needs root or the same user) and attributes
// them to the sections of exe and to the packages whose functions they hold.
func ResidentBinary(pid int, exe string) (Resident, error) {
	bin, err := elf.Open(exe)
	if err != nil {
		return Resident{}, err
	}
	defer func() { _ = bin.Close() }()
	funcs, err := functions(bin)
	if err != nil {
		return Resident{}, fmt.Errorf("the functions of %s: %w", exe, err)
	}
	ranges, err := mappedRanges(pid, exe)
	if err != nil {
		return Resident{}, err
	}
	pm, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		return Resident{}, err
	}
	defer pm.Close()
	page := uint64(os.Getpagesize())
	r := Resident{Sections: map[string]int64{}, Code: map[string]int64{}}
	for _, rg := range ranges {
		n := (rg[1] - rg[0]) / page
		entries := make([]byte, 8*n)
		if _, err := pm.ReadAt(entries, int64(rg[0]/page*8)); err != nil {
			return Resident{}, fmt.Errorf("reading /proc/%d/pagemap: %w", pid, err)
		}
		for i := range n {
			// Bit 63 of a pagemap entry: the page is present in RAM (proc_pid_pagemap(5)).
			if binary.LittleEndian.Uint64(entries[8*i:])&(1<<63) == 0 {
				continue
			}
			lo := rg[0] + i*page
			name := "(outside sections)"
			if s := sectionAt(bin, lo); s != nil {
				name = s.Name
			}
			r.Sections[name] += int64(page)
			attribute(r.Code, funcs, lo, lo+page)
		}
	}
	return r, nil
}

// functions returns the functions of the Go binary f, sorted by address, from its function table.
func functions(f *elf.File) ([]gosym.Func, error) {
	pcln, text := f.Section(".gopclntab"), f.Section(".text")
	if pcln == nil || text == nil {
		return nil, errors.New("no .gopclntab or .text section")
	}
	data, err := pcln.Data()
	if err != nil {
		return nil, err
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return nil, err
	}
	funcs := slices.Clone(tab.Funcs)
	slices.SortFunc(funcs, func(a, b gosym.Func) int { return cmp.Compare(a.Entry, b.Entry) })
	return funcs, nil
}

// mappedRanges returns the address ranges of process pid that map the file exe.
func mappedRanges(pid int, exe string) ([][2]uint64, error) {
	abs, err := filepath.Abs(exe)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][2]uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address perms offset dev inode path
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[5] != abs {
			continue
		}
		lo, hi, _ := strings.Cut(fs[0], "-")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("/proc/%d/maps: bad range %q", pid, fs[0])
		}
		out = append(out, [2]uint64{a, b})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("process %d maps nothing of %s", pid, abs)
	}
	return out, nil
}

func sectionAt(f *elf.File, addr uint64) *elf.Section {
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && s.Addr <= addr && addr < s.Addr+s.Size {
			return s
		}
	}
	return nil
}

// attribute adds to by the bytes of [lo, hi) that each function of funcs (sorted by address)
// covers, by the function's package.
func attribute(by map[string]int64, funcs []gosym.Func, lo, hi uint64) {
	i, _ := slices.BinarySearchFunc(funcs, lo, func(f gosym.Func, a uint64) int {
		return cmp.Compare(f.End, a+1)
	})
	for ; i < len(funcs) && funcs[i].Entry < hi; i++ {
		f := funcs[i]
		if start, end := max(f.Entry, lo), min(f.End, hi); end > start {
			by[symbolPackage(f.Name)] += int64(end - start)
		}
	}
}

// symbolPackage is the import path of the package a Go symbol belongs to ("net/http" for
// "net/http.(*Server).Serve", "k8s.io/api/core/v1" for "k8s.io/api/core/v1.(*Pod).Marshal"),
// "type:" or "go:" for the runtime's type descriptors and function data.
func symbolPackage(name string) string {
	for _, p := range []string{"type:", "go:"} {
		if strings.HasPrefix(name, p) {
			return p
		}
	}
	name, _, _ = strings.Cut(name, "[") // type arguments name other packages
	slash := strings.LastIndexByte(name, '/')
	dot := strings.IndexByte(name[slash+1:], '.')
	if dot < 0 {
		return name
	}
	return name[:slash+1+dot]
}

// Top returns the n largest entries of by, largest first.
func Top(by map[string]int64, n int) []string {
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(by[b], by[a]), strings.Compare(a, b)) })
	return keys[:min(n, len(keys))]
}
