package compiler

import (
	"github.com/galley-dev/galley/compiler/charts"
	"github.com/galley-dev/galley/compiler/helm"
	"github.com/galley-dev/galley/compiler/stack"
)

// chartSet holds the stack's remote charts, by app name, loaded and
// checked through galley.lock by charts.Prepare.
type chartSet map[string]*helm.Chart

// load returns the app's chart: the remote one prepared for it, or the
// one at its path in the stack.
func (cs chartSet) load(s *stack.Stack, a *stack.App) (*helm.Chart, error) {
	if ch, ok := cs[a.Name]; ok {
		return ch, nil
	}
	if a.Chart.Remote() {
		// charts.Prepare loads every remote chart or fails.
		return nil, appError(a, "chart", "remote chart was not prepared through %s", charts.LockFile)
	}
	ch, err := helm.Load(s.Path(a.Chart.Path))
	if err != nil {
		return nil, appError(a, "chart.path", "%v", err)
	}
	return ch, nil
}
