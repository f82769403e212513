package service

import (
	"sync"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/controller/allocator"
)

// allocState is what the three reconcilers share: the allocator and the bookkeeping around it,
// behind one mutex. The mutex serialises every allocator call (about a microsecond each) and
// guards every field; nothing is held across an API call.
type allocState struct {
	mu        sync.Mutex
	alloc     *allocator.Allocator // nil until restored
	poolsFP   string               // fingerprint of the pools in force
	pending   map[string]struct{}  // Services waiting for an address (or a family)
	reported  map[string]string    // the last problem reported by event, per pending Service
	released  map[string]releaseReport
	lastCfg   *config.Config  // the configuration in force, the last good one for ParseUsable
	unusable  map[string]bool // pools of the cluster that are not in force (invalid, no last version)
	cfgEvents map[string]bool // configuration problems reported by event, by message
}

// releaseReport is the last set of addresses a pool change released from one pool.
type releaseReport struct {
	generation int64
	message    string
}

func newAllocState() allocState {
	return allocState{
		pending:  map[string]struct{}{},
		reported: map[string]string{},
		released: map[string]releaseReport{},
	}
}

// PoolCounts returns the address counts of every pool in force, for metrics.
func (s *allocState) PoolCounts() []allocator.PoolCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.alloc == nil {
		return nil
	}
	return s.alloc.Counts()
}

// pendingCount returns the number of Services waiting for an address, for metrics.
func (s *allocState) pendingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// pendingKeys returns the keys of the Services waiting for an address.
func (s *allocState) pendingKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.pending))
	for key := range s.pending {
		keys = append(keys, key)
	}
	return keys
}

// firstReport reports whether report is not the last one made for the Service key, and
// remembers it as made.
func (s *allocState) firstReport(key, report string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reported[key] == report {
		return false
	}
	s.reported[key] = report
	return true
}

// release drops the Service key from the bookkeeping and frees what the allocator holds for it.
func (s *allocState) release(key string) []allocator.Assignment {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, key)
	delete(s.reported, key)
	if s.alloc == nil {
		return nil
	}
	return s.alloc.Release(key)
}
