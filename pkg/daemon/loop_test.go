package daemon

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/pkg/reconcile"
)

// flagEnforcer is a host whose only item drifts until the first Apply;
// its repair needs an agent restart unless network is set.
type flagEnforcer struct{ repaired, network bool }

func (e *flagEnforcer) Check(context.Context) []finding.Finding {
	return []finding.Finding{{Item: "ecs_config.X", Status: finding.OK}}
}

func (e *flagEnforcer) Apply(context.Context, bool, io.Writer) ([]finding.Finding, []finding.Change) {
	fs := e.Check(context.Background())
	if e.repaired {
		return fs, nil
	}
	e.repaired = true
	if e.network {
		return fs, []finding.Change{{Item: "network.credentials_redirect", Action: "appended rule"}}
	}
	return fs, []finding.Change{{Item: "ecs_config.X", Action: "rewrote line", AgentRestart: true}}
}

// recordingRestarter counts what the loop asks for and restarts when due.
type recordingRestarter struct {
	mu       sync.Mutex
	requests int
	ticks    int
	due      time.Time
	pending  bool
	done     chan struct{}
}

func (r *recordingRestarter) Request(now time.Time, _ string, _ bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.pending, r.due = true, now.Add(10*time.Millisecond)
}

func (r *recordingRestarter) Due() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.due, r.pending
}

func (r *recordingRestarter) Tick(context.Context, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ticks++
	if r.pending {
		r.pending = false
		close(r.done)
	}
}

// A repair in the very first reconcile (a broken ecs.config at boot) asks
// for a restart before the loop has started: the restart timer must
// already exist, and the restart happens when it is due.
func TestRestartRequestedByFirstReconcile(t *testing.T) {
	p := policy.Default()
	r := &recordingRestarter{done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{
			Log:    zap.NewNop(),
			Policy: p,
			Build: func(*policy.Policy) (*Setup, error) {
				return &Setup{Reconciler: &reconcile.Reconciler{Enforcers: []reconcile.Enforcer{&flagEnforcer{}}, Log: zap.NewNop()}, Restarter: r}, nil
			},
		})
	}()
	select {
	case <-r.done:
	case err := <-errc:
		t.Fatalf("Run returned %v before the restart", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the restart requested by the first reconcile never happened")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if r.requests != 1 {
		t.Errorf("%d restart requests, want 1", r.requests)
	}
}

// A network repair never asks for an agent restart: ecs-init re-adds its
// rules on every restart, so that would feed itself.
func TestNetworkRepairRequestsNoRestart(t *testing.T) {
	r := &recordingRestarter{done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reconciled := make(chan reconcile.Result, 4)
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{
			Log:    zap.NewNop(),
			Policy: policy.Default(),
			Build: func(*policy.Policy) (*Setup, error) {
				return &Setup{Reconciler: &reconcile.Reconciler{Enforcers: []reconcile.Enforcer{&flagEnforcer{network: true}}, Log: zap.NewNop()}, Restarter: r}, nil
			},
			Reconciled: func(res reconcile.Result, _ time.Duration) { reconciled <- res },
		})
	}()
	select {
	case res := <-reconciled:
		if len(res.Changes) != 1 {
			t.Fatalf("changes %+v, want the one network repair", res.Changes)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reconcile")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.requests != 0 {
		t.Errorf("%d restart requests after a network repair, want 0", r.requests)
	}
}
