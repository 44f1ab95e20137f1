// Package scriptstate keeps what a testscript custom command starts (a
// registry, a cluster) by name for the length of one script: testscript
// gives commands no per-script storage, so it is keyed by the script's
// $WORK and dropped when the script ends.
package scriptstate

import (
	"sync"

	"github.com/rogpeppe/go-internal/testscript"
)

// Named holds, per running script, the values a command started, by name.
// The zero value is ready to use.
type Named[T any] struct {
	mu     sync.Mutex
	byWork map[string]map[string]T
}

// For returns the values of the script ts. A script runs its commands one
// after another, so the map needs no lock of its own.
func (n *Named[T]) For(ts *testscript.TestScript) map[string]T {
	work := ts.Getenv("WORK")
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byWork == nil {
		n.byWork = map[string]map[string]T{}
	}
	m := n.byWork[work]
	if m == nil {
		m = map[string]T{}
		n.byWork[work] = m
		ts.Defer(func() {
			n.mu.Lock()
			delete(n.byWork, work)
			n.mu.Unlock()
		})
	}
	return m
}

// ValidEnvName says whether s can prefix the environment variables a
// command sets (s_KUBECONFIG, s_HOST...).
func ValidEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range s {
		if c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
