package daemon

import (
	"context"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/pkg/reconcile"
	"github.com/ecs-remediator/ecs-remediator/pkg/watch"
)

// driftEnforcer repairs one rule and one file on every pass after the
// first (the start): each event-driven reconcile has something to log.
type driftEnforcer struct {
	mu     sync.Mutex
	passes int
}

func (e *driftEnforcer) Check(context.Context) []finding.Finding {
	return []finding.Finding{{Item: "network.credentials_redirect", Status: finding.OK}}
}

func (e *driftEnforcer) Apply(context.Context, bool, io.Writer) ([]finding.Finding, []finding.Change) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.passes++
	if e.passes == 1 {
		return e.Check(context.Background()), nil
	}
	return e.Check(context.Background()), []finding.Change{
		{Item: "network.credentials_redirect", Action: "appended rule", Target: "iptables nat OUTPUT", Reason: "missing"},
		{Item: "ecs_config.task_iam_role", Action: "rewrote line 2", Target: "/etc/ecs/ecs.config", Reason: "was false"},
	}
}

// runWithEvents runs the daemon with debounce d and returns its event
// channel, the reconciles it reports and the log.
func runWithEvents(t *testing.T, d time.Duration) (chan<- watch.Event, <-chan reconcile.Result, *observer.ObservedLogs, func() int) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	p := policy.Default()
	p.Debounce = d
	events := make(chan chan<- watch.Event, 1)
	reconciled := make(chan reconcile.Result, 2048)
	var mu sync.Mutex
	n := 0
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{
			Log: log, Policy: p,
			Build: func(*policy.Policy) (*Setup, error) {
				return &Setup{
					Reconciler: &reconcile.Reconciler{Enforcers: []reconcile.Enforcer{&driftEnforcer{}}, Log: log},
					Watch: func(_ context.Context, out chan<- watch.Event) error {
						events <- out
						return nil
					},
				}, nil
			},
			OnResult: func(res reconcile.Result, _ time.Duration) {
				mu.Lock()
				n++
				mu.Unlock()
				reconciled <- res
			},
		})
	}()
	stop := func() int {
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return n
	}
	t.Cleanup(func() { cancel() })
	var out chan<- watch.Event
	select {
	case out = <-events:
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon started no watchers")
	}
	<-reconciled // the start
	return out, reconciled, logs, stop
}

func waitReconcile(t *testing.T, ch <-chan reconcile.Result, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no reconcile after %s", what)
	}
}

// A Settled event (a finished write, a committed transaction) is acted on
// without waiting for the debounce: with an hour of debounce, the
// reconcile still comes, and the pending debounce of the write that was in
// progress before it is spent by it.
func TestSettledEventSkipsTheDebounce(t *testing.T) {
	out, reconciled, _, stop := runWithEvents(t, time.Hour)
	out <- watch.Event{Source: watch.SourceFile, Name: "/etc/ecs/ecs.config"} // in progress: waits an hour
	out <- watch.Event{Source: watch.SourceFile, Name: "/etc/ecs/ecs.config", Settled: true}
	waitReconcile(t, reconciled, "a settled event with an hour of debounce")
	if n := stop(); n != 2 {
		t.Errorf("%d reconciles, want 2 (the start and the settled event)", n)
	}
}

// A burst of finished writes is not a reconcile per write: the first is
// acted on at once, the rest wait a debounce after it.
func TestSettledBurstIsOneReconcilePerDebounce(t *testing.T) {
	out, reconciled, _, stop := runWithEvents(t, time.Hour)
	for i := 0; i < 1000; i++ {
		out <- watch.Event{Source: watch.SourceFile, Name: "/etc/ecs/ecs.config", Settled: true}
	}
	waitReconcile(t, reconciled, "a burst of settled events")
	if n := stop(); n != 2 {
		t.Errorf("%d reconciles for a burst of 1000 finished writes, want 2 (the start, then one for the burst within the hour of debounce)", n)
	}
}

// The repair line names the process nf_tables said committed the drift;
// a file change names none and says so; the daemon's own transactions are
// neither a culprit nor a reason to look again.
func TestRepairLineNamesTheCulprit(t *testing.T) {
	out, reconciled, logs, stop := runWithEvents(t, time.Hour)
	out <- watch.Event{Source: watch.SourceNftables, Name: "newrule,newgen", Settled: true, PID: os.Getpid(), Culprit: "ecs-remediator (pid self)"}
	out <- watch.Event{Source: watch.SourceNftables, Name: "newrule,newgen", Settled: true, PID: 4711, PPID: os.Getpid(), Culprit: "iptables-nft-re (pid 4711)"}
	out <- watch.Event{Source: watch.SourceNftables, Name: "delrule,newgen", Settled: true, PID: 812, PPID: 1, Culprit: "firewalld (pid 812)"}
	waitReconcile(t, reconciled, "firewalld's transaction")
	stop()
	got := map[string]string{}
	for _, e := range logs.FilterMessageSnippet("(").All() {
		item, _ := e.ContextMap()["item"].(string)
		if c, ok := e.ContextMap()["culprit"].(string); ok && item != "" {
			got[item] = c
		}
	}
	if got["network.credentials_redirect"] != "firewalld (pid 812)" {
		t.Errorf("rule repair culprit %q, want firewalld (pid 812) (the daemon's own transactions are not culprits)", got["network.credentials_redirect"])
	}
	if got["ecs_config.task_iam_role"] != Unknown {
		t.Errorf("file repair culprit %q, want %q: inotify names no writer", got["ecs_config.task_iam_role"], Unknown)
	}
	for _, e := range logs.FilterMessageSnippet("network.credentials_redirect:").All() {
		if want := "; changed by firewalld (pid 812)"; len(e.Message) < len(want) || e.Message[len(e.Message)-len(want):] != want {
			t.Errorf("repair line %q does not end with %q", e.Message, want)
		}
	}
}
