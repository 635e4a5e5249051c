package daemon

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/pkg/reconcile"
	"github.com/ecs-remediator/ecs-remediator/pkg/watch"
)

// alwaysDrifted is an item another tool undoes at once: every pass finds
// it drifted and repairs it.
type alwaysDrifted struct{ repairs atomic.Int64 }

func (a *alwaysDrifted) Check(context.Context) []finding.Finding {
	return []finding.Finding{{Item: "x", Status: finding.Drift}}
}

func (a *alwaysDrifted) Apply(context.Context, bool, io.Writer) ([]finding.Finding, []finding.Change) {
	a.repairs.Add(1)
	return []finding.Finding{{Item: "x", Status: finding.OK}}, []finding.Change{{Item: "x", Action: "rewrote"}}
}

// Regression: the periodic resync repaired on every tick even during a
// fight, so with a short resync_interval the exponential back-off was
// void (test/reliability's fight test saw a repair every resync_interval).
// Now a resync waits for the back-off like an event does.
func TestResyncRespectsFightBackoff(t *testing.T) {
	p := policy.Default()
	p.ResyncInterval = 20 * time.Millisecond
	e := &alwaysDrifted{}
	var fightsSeen atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	err := Run(ctx, Options{
		Log:    zap.NewNop(),
		Policy: p,
		Build: func(*policy.Policy) (*Setup, error) {
			return &Setup{Reconciler: &reconcile.Reconciler{Enforcers: []reconcile.Enforcer{e}}}, nil
		},
		Fight: func(string) { fightsSeen.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	// Five repairs start the fight; then 1 s, 2 s, ... between repairs: a
	// handful in 2.5 s. Without the back-off a resync every 20 ms gives
	// about a hundred.
	if n := e.repairs.Load(); n > 10 {
		t.Fatalf("%d repairs in 2.5 s of fight with a 20 ms resync: the resync ignores the back-off", n)
	}
	if n := e.repairs.Load(); n < 6 {
		t.Fatalf("%d repairs: the resync stopped holding the state (want the 5 that start the fight and more after the back-off)", n)
	}
	if fightsSeen.Load() != 1 {
		t.Fatalf("fight reported %d times, want 1", fightsSeen.Load())
	}
}

// sometimesDrifted is an item that drifts when told to, and is repaired
// by the next pass that is allowed to.
type sometimesDrifted struct {
	item    string
	drifted atomic.Bool
	repairs atomic.Int64
}

func (s *sometimesDrifted) Check(context.Context) []finding.Finding {
	if s.drifted.Load() {
		return []finding.Finding{{Item: s.item, Status: finding.Drift}}
	}
	return []finding.Finding{{Item: s.item, Status: finding.OK}}
}

func (s *sometimesDrifted) Apply(context.Context, bool, io.Writer) ([]finding.Finding, []finding.Change) {
	if !s.drifted.Swap(false) {
		return []finding.Finding{{Item: s.item, Status: finding.OK}}, nil
	}
	s.repairs.Add(1)
	return []finding.Finding{{Item: s.item, Status: finding.OK}}, []finding.Change{{Item: s.item, Action: "inserted rule"}}
}

// Contract (issue 16): the back-off is per item. While "x" is in a fight
// and waits seconds between repairs, a deleted localhost guard is repaired
// by the next pass: it does not wait for x's back-off (x is not repaired
// in between, so the guard's repair came from a pass that held x).
func TestFightHoldsOnlyItsItem(t *testing.T) {
	p := policy.Default()
	x := &alwaysDrifted{}
	guard := &sometimesDrifted{item: "network.localhost_guard"}
	events := make(chan chan<- watch.Event, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var fought atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			Log:    zap.NewNop(),
			Policy: p,
			Build: func(*policy.Policy) (*Setup, error) {
				return &Setup{
					Reconciler: &reconcile.Reconciler{Enforcers: []reconcile.Enforcer{x, guard}},
					Watch: func(_ context.Context, out chan<- watch.Event) error {
						events <- out
						return nil
					},
				}, nil
			},
			Fight: func(string) { fought.Add(1) },
		})
	}()
	out := <-events
	// The tool that undoes x announces every change (an event every 5 ms).
	go func() {
		for ctx.Err() == nil {
			select {
			case out <- watch.Event{Source: watch.SourceFile, Name: "x"}:
			case <-ctx.Done():
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	// Let x's back-off grow past a few seconds: its repairs then come
	// seconds apart.
	for fought.Load() == 0 || x.repairs.Load() < 7 {
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < 5; i++ {
		before := x.repairs.Load()
		guard.drifted.Store(true)
		out <- watch.Event{Source: watch.SourceNftables, Name: "delrule"}
		for guard.drifted.Load() {
			time.Sleep(time.Millisecond)
		}
		if x.repairs.Load() != before {
			// x's hold ended in the meantime: not a proof either way; try again.
			continue
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("the guard was never repaired by a pass that held x: every repair of it waited for x's back-off")
}
