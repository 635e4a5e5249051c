package daemon

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/pkg/reconcile"
	"github.com/ecs-remediator/ecs-remediator/pkg/watch"
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
			OnResult: func(res reconcile.Result, _ time.Duration) { reconciled <- res },
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

// lockEnforcer takes the xtables lock file in every pass, as
// iptables-legacy-restore does, and repairs something in the passes
// repair lists (1-based).
type lockEnforcer struct {
	lock   string
	pass   int
	repair map[int]bool
}

func (e *lockEnforcer) Check(context.Context) []finding.Finding { return nil }

func (e *lockEnforcer) Apply(context.Context, bool, io.Writer) ([]finding.Finding, []finding.Change) {
	e.pass++
	if f, err := os.OpenFile(e.lock, os.O_RDONLY|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}
	if e.repair[e.pass] {
		return nil, []finding.Change{{Item: "network.credentials_redirect", Action: "appended rule"}}
	}
	return nil, nil
}

// The loop probes Setup.Baseline right before and after each reconcile
// once the poller polls with it (not at the start reconcile, before the
// watchers), and pauses Setup.Lock during the pass: the pass's own lock
// events are dropped, and when the pass repaired something it pokes for
// one more look, which (quiet) pokes nothing.
func TestLoopBaselineAndLock(t *testing.T) {
	dir := t.TempDir()
	lockPath := filepath.Join(dir, "xtables.lock")
	var mu sync.Mutex
	probes := 0
	b := watch.NewBaseline(func(bool) (string, string, error) {
		mu.Lock()
		defer mu.Unlock()
		probes++
		return "A", "", nil
	})
	lock := watch.NewLockWatch(lockPath)
	e := &lockEnforcer{lock: lockPath, repair: map[int]bool{3: true}}
	p := policy.Default()
	p.ResyncInterval = time.Hour
	events := make(chan chan<- watch.Event, 1)
	results := make(chan time.Time, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{
			Log:    zap.NewNop(),
			Policy: p,
			Build: func(*policy.Policy) (*Setup, error) {
				return &Setup{
					Reconciler: &reconcile.Reconciler{Enforcers: []reconcile.Enforcer{e}, Log: zap.NewNop()},
					Baseline:   b,
					Lock:       lock,
					Watch: func(ctx context.Context, out chan<- watch.Event) error {
						watch.Poll(ctx, time.Hour, 1, b, out)
						events <- out
						return lock.Start(ctx, out)
					},
				}, nil
			},
			OnResult: func(reconcile.Result, time.Duration) { results <- time.Now() },
		})
	}()
	next := func(what string) {
		t.Helper()
		select {
		case <-results:
		case <-time.After(10 * time.Second):
			t.Fatalf("no reconcile: %s", what)
		}
	}
	none := func(what string) {
		t.Helper()
		select {
		case <-results:
			t.Fatalf("a reconcile: %s", what)
		case <-time.After(300 * time.Millisecond):
		}
	}
	probed := func() int { mu.Lock(); defer mu.Unlock(); return probes }

	next("start")
	if n := probed(); n != 0 {
		t.Fatalf("the start reconcile probed %d times before the poller started", n)
	}
	out := <-events
	out <- watch.Event{Source: watch.SourceFile, Name: "ecs.config", Settled: true}
	next("pass 2 (quiet, takes the lock)")
	if n := probed(); n != 2 {
		t.Fatalf("pass 2 probed %d times, want 2 (before and after)", n)
	}
	if !b.Quiet() {
		t.Fatal("pass 2 changed nothing and the state did not move: not quiet")
	}
	none("pass 2 was quiet: its own lock events are dropped")

	out <- watch.Event{Source: watch.SourceFile, Name: "ecs.config", Settled: true}
	next("pass 3 (repairs, takes the lock)")
	next("the poke after a repairing pass that took the lock")
	if !b.Quiet() {
		t.Fatal("the pass after the poke changed nothing: not quiet")
	}
	none("the poked pass was quiet")
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
