package agent

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ecs-remediator/ecs-remediator/pkg/daemon"
	"github.com/ecs-remediator/ecs-remediator/pkg/logging"
)

// The daemon's loop drives a *Restarter through its interface.
var _ daemon.Restarter = (*Restarter)(nil)

// fakeUnits records calls; states and errors are consumed in order (the
// last one repeats).
type fakeUnits struct {
	calls      []string
	states     []string
	stateErrs  []error
	restartErr []error
	reloadErr  []error
	started    time.Time // StartedAt's answer
}

func (f *fakeUnits) StartedAt(ctx context.Context, unit string) (time.Time, error) {
	f.calls = append(f.calls, "started")
	return f.started, nil
}

func next[T any](q *[]T) T {
	var zero T
	if len(*q) == 0 {
		return zero
	}
	v := (*q)[0]
	if len(*q) > 1 {
		*q = (*q)[1:]
	}
	return v
}

func (f *fakeUnits) TryRestart(ctx context.Context, unit string) error {
	f.calls = append(f.calls, "restart "+unit)
	return next(&f.restartErr)
}

func (f *fakeUnits) Reload(ctx context.Context) error {
	f.calls = append(f.calls, "reload")
	return next(&f.reloadErr)
}

func (f *fakeUnits) ActiveState(ctx context.Context, unit string) (string, error) {
	f.calls = append(f.calls, "state")
	if err := next(&f.stateErrs); err != nil {
		return "", err
	}
	if s := next(&f.states); s != "" {
		return s, nil
	}
	return "active", nil
}

var errBus = errors.New("dial unix /run/dbus/system_bus_socket: connect: no such file or directory")

// step is one thing the daemon loop does at a time offset: a Request
// (req != "") or a Tick.
type step struct {
	at     time.Duration
	req    string
	reload bool
	want   Outcome // for ticks
	due    time.Duration
	noDue  bool // after the step, nothing is pending
}

// stats counts what Config.Observe hears.
type stats struct {
	Requests, Restarts, Coalesced, Deferred, Failures, SkippedStopped, StartedAfter, Suppressed int
	Pending                                                                                     bool // Due says a restart is pending
}

func (s *stats) observe(e Event) {
	switch e {
	case EventRequested:
		s.Requests++
	case EventRestarted:
		s.Restarts++
	case EventCoalesced:
		s.Coalesced++
	case EventDeferred:
		s.Deferred++
	case EventFailed:
		s.Failures++
	case EventSkippedStopped:
		s.SkippedStopped++
	case EventStartedAfter:
		s.StartedAfter++
	case EventSuppressed:
		s.Suppressed++
	}
}

func TestRestarter(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := Config{Unit: "ecs.service", Mode: OnChange, MinRestartInterval: time.Minute, RetryMin: time.Second, RetryMax: 4 * time.Second}
	for _, tc := range []struct {
		name      string
		cfg       func(*Config)
		units     fakeUnits
		steps     []step
		wantCalls []string
		wantStats stats
	}{
		{
			name: "a burst of requests gives one restart",
			steps: []step{
				{at: 0, req: "ecs_config.task_iam_role changed", due: 0},
				{at: time.Millisecond, req: "ecs_config.no_proxy changed", due: 0},
				{at: time.Millisecond, req: "ecs_config.task_iam_role changed", due: 0},
				{at: 2 * time.Millisecond, want: Restarted, noDue: true},
				{at: 3 * time.Millisecond, want: Idle, noDue: true},
			},
			wantCalls: []string{"state", "started", "restart ecs.service"},
			wantStats: stats{Requests: 3, Restarts: 1, Coalesced: 2},
		},
		{
			name: "a request inside the interval waits for its end, then restarts once",
			steps: []step{
				{at: 0, req: "a", due: 0},
				{at: 0, want: Restarted, noDue: true},
				{at: 10 * time.Second, req: "b", due: time.Minute},
				{at: 20 * time.Second, req: "c", due: time.Minute},
				{at: 30 * time.Second, want: Waiting, due: time.Minute},
				{at: time.Minute, want: Restarted, noDue: true},
			},
			wantCalls: []string{"state", "started", "restart ecs.service", "state", "started", "restart ecs.service"},
			wantStats: stats{Requests: 3, Restarts: 2, Coalesced: 1, Deferred: 1},
		},
		{
			name: "a request after the interval restarts at once",
			steps: []step{
				{at: 0, req: "a"},
				{at: 0, want: Restarted, noDue: true},
				{at: 2 * time.Minute, req: "b", due: 2 * time.Minute},
				{at: 2 * time.Minute, want: Restarted, noDue: true},
			},
			wantCalls: []string{"state", "started", "restart ecs.service", "state", "started", "restart ecs.service"},
			wantStats: stats{Requests: 2, Restarts: 2},
		},
		{
			name: "settle gathers changes made together",
			cfg:  func(c *Config) { c.Settle = time.Second },
			steps: []step{
				{at: 0, req: "ecs.config", due: time.Second},
				{at: 500 * time.Millisecond, want: Waiting, due: time.Second},
				{at: 800 * time.Millisecond, req: "drop-in", reload: true, due: time.Second},
				{at: time.Second, want: Restarted, noDue: true},
			},
			wantCalls: []string{"reload", "state", "started", "restart ecs.service"},
			wantStats: stats{Requests: 2, Restarts: 1, Coalesced: 1},
		},
		{
			name: "mode never restarts nothing",
			cfg:  func(c *Config) { c.Mode = Never },
			steps: []step{
				{at: 0, req: "a", noDue: true},
				{at: time.Hour, want: Idle, noDue: true},
			},
			wantStats: stats{Requests: 1, Suppressed: 1},
		},
		{
			name:  "an agent that started after the repair has read it: no restart",
			cfg:   func(c *Config) { c.Settle = time.Second },
			units: fakeUnits{started: t0.Add(500 * time.Millisecond)},
			steps: []step{
				{at: 0, req: "ecs.config", due: time.Second},
				{at: time.Second, want: StartedAfter, noDue: true},
			},
			wantCalls: []string{"state", "started"},
			wantStats: stats{Requests: 1, StartedAfter: 1},
		},
		{
			name:  "a repair after the agent started still restarts it",
			cfg:   func(c *Config) { c.Settle = time.Second },
			units: fakeUnits{started: t0.Add(500 * time.Millisecond)},
			steps: []step{
				{at: 0, req: "ecs.config", due: time.Second},
				{at: 800 * time.Millisecond, req: "drop-in", due: time.Second},
				{at: time.Second, want: Restarted, noDue: true},
			},
			wantCalls: []string{"state", "started", "restart ecs.service"},
			wantStats: stats{Requests: 2, Restarts: 1, Coalesced: 1},
		},
		{
			name:  "a stopped agent is not started",
			units: fakeUnits{states: []string{"inactive"}},
			steps: []step{
				{at: 0, req: "a", reload: true},
				{at: 0, want: AgentStopped, noDue: true},
			},
			wantCalls: []string{"reload", "state"},
			wantStats: stats{Requests: 1, SkippedStopped: 1},
		},
		{
			name:  "a failed agent is left to its Restart= policy",
			units: fakeUnits{states: []string{"failed"}},
			steps: []step{
				{at: 0, req: "a"},
				{at: 0, want: AgentStopped, noDue: true},
			},
			wantCalls: []string{"state"},
			wantStats: stats{Requests: 1, SkippedStopped: 1},
		},
		{
			name:  "a starting agent is waited for",
			units: fakeUnits{states: []string{"activating", "active"}},
			steps: []step{
				{at: 0, req: "a"},
				{at: 0, want: Waiting, due: time.Second},
				{at: time.Second, want: Restarted, noDue: true},
			},
			wantCalls: []string{"state", "state", "started", "restart ecs.service"},
			wantStats: stats{Requests: 1, Restarts: 1},
		},
		{
			name:  "D-Bus unreachable: the request stays pending, retried with back-off",
			units: fakeUnits{stateErrs: []error{errBus, errBus, errBus, errBus, nil}},
			steps: []step{
				{at: 0, req: "a"},
				{at: 0, want: Failed, due: time.Second},
				{at: time.Second, want: Failed, due: 3 * time.Second},
				{at: 3 * time.Second, want: Failed, due: 7 * time.Second},
				{at: 7 * time.Second, want: Failed, due: 11 * time.Second}, // capped at RetryMax 4s
				{at: 11 * time.Second, want: Restarted, noDue: true},
			},
			wantCalls: []string{"state", "state", "state", "state", "state", "started", "restart ecs.service"},
			wantStats: stats{Requests: 1, Restarts: 1, Failures: 4},
		},
		{
			name:  "a failed restart job is retried; back-off starts again after success",
			units: fakeUnits{restartErr: []error{errors.New(`try-restart ecs.service: the job ended with result "failed"`), nil}},
			steps: []step{
				{at: 0, req: "a"},
				{at: 0, want: Failed, due: time.Second},
				{at: time.Second, want: Restarted, noDue: true},
				{at: 5 * time.Minute, req: "b", due: 5 * time.Minute},
			},
			wantCalls: []string{"state", "started", "restart ecs.service", "state", "started", "restart ecs.service"},
			wantStats: stats{Requests: 2, Restarts: 1, Failures: 1, Pending: true},
		},
		{
			name:  "a failed daemon-reload is retried before the restart; done once",
			units: fakeUnits{reloadErr: []error{errBus, nil}, restartErr: []error{errBus, nil}},
			steps: []step{
				{at: 0, req: "drop-in", reload: true},
				{at: 0, want: Failed, due: time.Second},
				{at: time.Second, want: Failed, due: 3 * time.Second},
				{at: 3 * time.Second, want: Restarted, noDue: true},
			},
			wantCalls: []string{"reload", "reload", "state", "started", "restart ecs.service", "state", "started", "restart ecs.service"},
			wantStats: stats{Requests: 1, Restarts: 1, Failures: 2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			u := tc.units
			var got stats
			c.Observe = got.observe
			r := NewRestarter(&u, c)
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				if s.req != "" {
					r.Request(now, s.req, s.reload)
				} else {
					got, err := r.Step(context.Background(), now)
					if got != s.want {
						t.Fatalf("step %d (tick at %s): outcome %d, want %d (err %v)", i, s.at, got, s.want, err)
					}
					if (got == Failed) != (err != nil) {
						t.Fatalf("step %d: outcome %d with error %v", i, got, err)
					}
				}
				due, ok := r.Due()
				switch {
				case s.noDue && ok:
					t.Fatalf("step %d: due at %s, want nothing pending", i, due.Sub(t0))
				case !s.noDue && !ok:
					t.Fatalf("step %d: nothing pending, want due at %s", i, s.due)
				case !s.noDue && !due.Equal(t0.Add(s.due)):
					t.Fatalf("step %d: due at %s, want %s", i, due.Sub(t0), s.due)
				}
			}
			if !reflect.DeepEqual(u.calls, tc.wantCalls) {
				t.Errorf("calls %q, want %q", u.calls, tc.wantCalls)
			}
			_, got.Pending = r.Due()
			if got != tc.wantStats {
				t.Errorf("stats %+v, want %+v", got, tc.wantStats)
			}
		})
	}
}

func TestRestarterLogsWithMessageIDs(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	u := &fakeUnits{}
	t0 := time.Now()
	r := NewRestarter(u, Config{Unit: "ecs.service", MinRestartInterval: time.Minute, Log: zap.New(core)})
	r.Request(t0, "ecs_config.task_iam_role changed", false)
	r.Tick(context.Background(), t0)
	r.Request(t0.Add(time.Second), "agent.proxy_dropin changed", true)
	r.Request(t0.Add(2*time.Second), "agent.proxy_dropin changed", true) // merged, not logged again
	u.stateErrs = []error{errBus}
	r.Tick(context.Background(), t0.Add(time.Minute))

	var got []string
	for _, e := range logs.All() {
		got = append(got, e.ContextMap()["message_id"].(string)+" "+e.ContextMap()["action"].(string))
	}
	want := []string{
		logging.AgentRestarted + " agent-restarted",
		logging.AgentRestartDeferred + " restart-deferred",
		logging.AgentRestartDeferred + " restart-failed",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("log lines %q, want %q", got, want)
	}
	failed := logs.All()[2]
	if !strings.Contains(failed.Message, "system_bus_socket") || failed.ContextMap()["unit"] != "ecs.service" {
		t.Errorf("failure line must carry the D-Bus error and the unit: %q %v", failed.Message, failed.ContextMap())
	}
}

func TestRestarterNeverLogsOncePerReason(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	r := NewRestarter(&fakeUnits{}, Config{Unit: "ecs.service", Mode: Never, Log: zap.New(core)})
	now := time.Now()
	for i := 0; i < 5; i++ {
		r.Request(now, "ecs_config.task_iam_role changed", false)
	}
	r.Request(now, "agent.proxy_dropin changed", true)
	if logs.Len() != 2 {
		t.Errorf("%d log lines, want 2 (one per distinct reason)", logs.Len())
	}
	for _, e := range logs.All() {
		if !strings.Contains(e.Message, "systemctl try-restart ecs.service") {
			t.Errorf("line %q should tell the operator what to run", e.Message)
		}
	}
}
