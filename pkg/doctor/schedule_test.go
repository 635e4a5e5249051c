package doctor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ecs-remediator/ecs-remediator/pkg/logging"
)

func TestScheduleInterval(t *testing.T) {
	if got := NewSchedule(Config{}, 5*time.Minute, nil, nil).Interval(); got != LocalInterval {
		t.Errorf("IMDS every 5m: interval %s, want %s", got, LocalInterval)
	}
	if got := NewSchedule(Config{}, 20*time.Second, nil, nil).Interval(); got != 20*time.Second {
		t.Errorf("IMDS every 20s: interval %s, want 20s", got)
	}
}

// TestScheduleSkipsBridgePathAndSandboxes: the periodic diagnosis never
// probes the task bridge and knows the unit hides /root; the caller's
// Config is left as it was.
func TestScheduleSkipsBridgePathAndSandboxes(t *testing.T) {
	ext := &External{Why: "ecs.config line 1"}
	s := NewSchedule(Config{External: ext}, time.Minute, nil, nil)
	if !s.c.SkipBridgePath || !s.c.External.Sandboxed {
		t.Fatalf("SkipBridgePath=%v Sandboxed=%v, want both", s.c.SkipBridgePath, s.c.External.Sandboxed)
	}
	if ext.Sandboxed {
		t.Fatal("the caller's External was changed")
	}
}

// TestScheduleLogsOnce runs the schedule's diagnosis against local peers:
// a new failure is logged once with its message id, a persisting one not
// again, its recovery once; IMDS is asked only when its interval has
// passed, and its items keep their state in between.
func TestScheduleLogsOnce(t *testing.T) {
	var imdsHits atomic.Int32
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		imdsHits.Add(1)
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	t.Cleanup(imds.Close)
	var state atomic.Value
	state.Store("failed")
	c := Config{
		IMDSEndpoint:     imds.URL,
		CredentialsURL:   closedURL(t, "/v2/credentials/"),
		IntrospectionURL: agentServer(t, `{"Cluster":"default","ContainerInstanceArn":"arn:aws:ecs:us-east-1:123456789012:container-instance/default/abc"}`),
		UnitState:        func(context.Context, string) (string, error) { return state.Load().(string), nil },
		ProcRoot:         t.TempDir(),
		SysRoot:          t.TempDir(),
		Timeout:          time.Second,
	}
	core, logs := observer.New(zap.InfoLevel)
	var failing map[string]bool
	s := NewSchedule(c, time.Hour, zap.New(core), func(m map[string]bool) { failing = m })

	lines := func() map[string]string { // item -> message id of this run's lines
		m := map[string]string{}
		for _, e := range logs.TakeAll() {
			cm := e.ContextMap()
			m[cm["item"].(string)] = cm["message_id"].(string) + " " + cm["action"].(string)
		}
		return m
	}

	s.diagnose(context.Background())
	got := lines()
	if got[ItemAgentUnit] != logging.DoctorFailure+" diagnosis-failed" {
		t.Fatalf("first run: agent.unit logged %q, want a DoctorFailure line; all: %v", got[ItemAgentUnit], got)
	}
	if got[ItemCredentialsEndpoint] == "" {
		t.Fatalf("first run: credentials.endpoint (nothing listens) not logged: %v", got)
	}
	if _, ok := failing[ItemCredentialsBridgePath]; ok {
		t.Fatal("the periodic diagnosis ran the bridge-path probe")
	}
	if !failing[ItemAgentUnit] || imdsHits.Load() == 0 {
		t.Fatalf("after the first run: failing %v, IMDS hits %d", failing, imdsHits.Load())
	}
	imdsItems := map[string]bool{}
	for item, f := range failing {
		if strings.HasPrefix(item, "imds.") {
			imdsItems[item] = f
		}
	}
	if len(imdsItems) == 0 {
		t.Fatalf("no imds.* item after the first run: %v", failing)
	}

	hits := imdsHits.Load()
	s.diagnose(context.Background())
	if got := lines(); len(got) != 0 {
		t.Fatalf("second run, same failures: logged %v, want nothing", got)
	}
	if imdsHits.Load() != hits {
		t.Fatal("IMDS asked again before its interval")
	}
	for item, f := range imdsItems {
		if failing[item] != f {
			t.Fatalf("%s changed from %v to %v in a run that skipped IMDS", item, f, failing[item])
		}
	}

	state.Store("active")
	s.diagnose(context.Background())
	got = lines()
	if got[ItemAgentUnit] != logging.DoctorRecovered+" diagnosis-recovered" || len(got) != 1 {
		t.Fatalf("third run: logged %v, want agent.unit's recovery only", got)
	}
	if failing[ItemAgentUnit] {
		t.Fatal("agent.unit still failing in the gauge after it recovered")
	}
}

// TestScheduleOneAtATime: Run does nothing while a diagnosis runs, and a
// diagnosis that ctx ended reports nothing.
func TestScheduleOneAtATime(t *testing.T) {
	calls := 0
	s := NewSchedule(Config{ProcRoot: t.TempDir(), SysRoot: t.TempDir(), Timeout: time.Second,
		IMDSEndpoint: closedURL(t, ""), CredentialsURL: closedURL(t, "/"), IntrospectionURL: closedURL(t, "/v1/metadata")},
		time.Hour, nil, func(map[string]bool) { calls++ })
	s.running.Store(true)
	s.Run(context.Background())
	time.Sleep(50 * time.Millisecond)
	if calls != 0 {
		t.Fatal("Run started a second diagnosis while one was running")
	}
	s.running.Store(false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.diagnose(ctx)
	if calls != 0 {
		t.Fatal("a cancelled diagnosis reported")
	}
	if s.running.Load() {
		t.Fatal("running still set after a diagnosis")
	}
}
