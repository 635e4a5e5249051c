package metrics

import (
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

const (
	iamRole = "ecs_config.ECS_ENABLE_TASK_IAM_ROLE"
	natRule = "network.credentials_redirect"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestTextfileFollowsDriftAndRepair(t *testing.T) {
	path := filepath.Join(t.TempDir(), "textfile_collector", "ecs_remediator.prom")
	m := New(Config{Textfile: path, Version: "1.2.3", Commit: "abc1234"})

	// Pass 1: the flag drifted, the NAT rule is fine.
	m.Observe([]finding.Finding{f(iamRole, finding.Drift), f(natRule, finding.OK)}, nil, 3*time.Millisecond, t0)
	if err := m.Flush(t0); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("textfile mode %v, want 0644 (node_exporter runs as another user)", fi.Mode().Perm())
	}
	mfs := parseFile(t, path)
	if v := value(t, mfs, NameItemCompliant, "item", iamRole); v != 0 {
		t.Errorf("drifted item compliant = %v, want 0", v)
	}
	if v := value(t, mfs, NameItemCompliant, "item", natRule); v != 1 {
		t.Errorf("ok item compliant = %v, want 1", v)
	}
	if v := value(t, mfs, NameRepairs, "item", iamRole); v != 0 {
		t.Errorf("repairs before any repair = %v, want 0 (series starts at 0)", v)
	}
	if v := value(t, mfs, NameLastSuccess); v != float64(t0.Unix()) {
		t.Errorf("last success = %v, want %v", v, t0.Unix())
	}
	if v := value(t, mfs, NameBuildInfo, "version", "1.2.3", "commit", "abc1234", "goversion", runtime.Version()); v != 1 {
		t.Errorf("build_info = %v, want 1", v)
	}
	if h := mfs[NameReconcileDuration].GetMetric()[0].GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != 0.003 {
		t.Errorf("duration histogram count %d sum %v, want 1 and 0.003", h.GetSampleCount(), h.GetSampleSum())
	}

	// Pass 2: the flag was repaired.
	t1 := t0.Add(time.Second)
	m.Observe([]finding.Finding{f(iamRole, finding.OK), f(natRule, finding.OK)},
		[]finding.Change{{Item: iamRole, Action: "rewrote line 4", Old: `"true"`, New: "true"}}, 5*time.Millisecond, t1)
	if err := m.Flush(t1); err != nil {
		t.Fatal(err)
	}
	mfs = parseFile(t, path)
	if v := value(t, mfs, NameItemCompliant, "item", iamRole); v != 1 {
		t.Errorf("repaired item compliant = %v, want 1", v)
	}
	if v := value(t, mfs, NameRepairs, "item", iamRole); v != 1 {
		t.Errorf("repairs after one repair = %v, want 1", v)
	}
	if v := value(t, mfs, NameRepairs, "item", natRule); v != 0 {
		t.Errorf("repairs of an untouched item = %v, want 0", v)
	}
	if v := value(t, mfs, NameLastSuccess); v != float64(t1.Unix()) {
		t.Errorf("last success = %v, want %v", v, t1.Unix())
	}
	if n := mfs[NameReconcileDuration].GetMetric()[0].GetHistogram().GetSampleCount(); n != 2 {
		t.Errorf("duration count %d, want 2", n)
	}

	// Pass 3: an error keeps the last success; the daemon's other events.
	t2 := t1.Add(time.Second)
	m.Observe([]finding.Finding{f(iamRole, finding.OK), f(natRule, finding.Error)}, nil, time.Millisecond, t2)
	m.AgentRestarted()
	m.RestartSuppressed()
	m.RestartSuppressed()
	m.Fight(natRule)
	m.ReaderFallback("nft", "unprintable-rule")
	m.Doctor(map[string]bool{"imds.reachable": true, "agent.unit": false})
	if err := m.Flush(t2); err != nil {
		t.Fatal(err)
	}
	mfs = parseFile(t, path)
	if v := value(t, mfs, NameItemCompliant, "item", natRule); v != 0 {
		t.Errorf("item in error compliant = %v, want 0", v)
	}
	if v := value(t, mfs, NameLastSuccess); v != float64(t1.Unix()) {
		t.Errorf("last success after an error pass = %v, want the previous %v", v, t1.Unix())
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{NameAgentRestarts, nil, 1},
		{NameRestartSuppressed, nil, 2},
		{NameFights, []string{"item", natRule}, 1},
		{NameFights, []string{"item", iamRole}, 0},
		{NameReaderFallbacks, []string{"backend", "nft", "reason", "unprintable-rule"}, 1},
		{NameDoctorFailed, []string{"check", "imds.reachable"}, 1},
		{NameDoctorFailed, []string{"check", "agent.unit"}, 0},
	} {
		if v := value(t, mfs, c.name, c.labels...); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}

	// Pass 4: the policy stopped enforcing the NAT rule and doctor dropped a
	// check: their gauges go, the counters stay.
	t3 := t2.Add(time.Second)
	m.Observe([]finding.Finding{f(iamRole, finding.OK)}, nil, time.Millisecond, t3)
	m.Doctor(map[string]bool{"agent.unit": false})
	if err := m.Flush(t3); err != nil {
		t.Fatal(err)
	}
	mfs = parseFile(t, path)
	if _, ok := sample(mfs, NameItemCompliant, map[string]string{"item": natRule}); ok {
		t.Errorf("%s{item=%q} still exported after the item left the findings", NameItemCompliant, natRule)
	}
	if _, ok := sample(mfs, NameDoctorFailed, map[string]string{"check": "imds.reachable"}); ok {
		t.Errorf("%s{check=imds.reachable} still exported after the check left the results", NameDoctorFailed)
	}
	if v := value(t, mfs, NameFights, "item", natRule); v != 1 {
		t.Errorf("fights counter of a dropped item = %v, want it kept at 1", v)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), "detail of") {
		t.Errorf("finding details leaked into the textfile:\n%s", data)
	}
}

// stamp marks path with an old mtime, so a later write is visible by mtime
// as well as by inode (every atomic replace is a new inode).
func stamp(t *testing.T, path string) (ino uint64) {
	t.Helper()
	old := time.Unix(1_000_000_000, 0)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	return inode(t, path)
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return statIno(fi)
}

func rewritten(t *testing.T, path string, prevIno uint64) bool {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	byInode := statIno(fi) != prevIno
	byMtime := fi.ModTime().Unix() != 1_000_000_000
	if byInode != byMtime {
		t.Fatalf("inode changed: %v, mtime changed: %v; an in-place write? the textfile must be replaced atomically", byInode, byMtime)
	}
	return byInode
}

func TestFlushWritesOnChangeOrOncePerMinute(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ecs_remediator.prom")
	m := New(Config{Textfile: path})
	compliant := []finding.Finding{f(iamRole, finding.OK)}

	m.Observe(compliant, nil, time.Millisecond, t0)
	if err := m.Flush(t0); err != nil {
		t.Fatal(err)
	}
	ino := stamp(t, path)

	steps := []struct {
		what    string
		at      time.Duration // since t0
		observe []finding.Finding
		changes []finding.Change
		event   func()
		write   bool
	}{
		{what: "nothing happened", at: 10 * time.Second, write: false},
		{what: "an idle pass (only duration and timestamp moved)", at: 20 * time.Second, observe: compliant, write: false},
		{what: "59s after the last write", at: 59 * time.Second, write: false},
		{what: "a minute after the last write", at: 60 * time.Second, write: true},
		{what: "right after the refresh", at: 61 * time.Second, write: false},
		{what: "a drift", at: 62 * time.Second, observe: []finding.Finding{f(iamRole, finding.Drift)}, write: true},
		{what: "a repair", at: 63 * time.Second, observe: compliant, changes: []finding.Change{{Item: iamRole}}, write: true},
		{what: "an agent restart", at: 64 * time.Second, event: m.AgentRestarted, write: true},
		{what: "a suppressed restart", at: 65 * time.Second, event: m.RestartSuppressed, write: true},
		{what: "a fight", at: 66 * time.Second, event: func() { m.Fight(iamRole) }, write: true},
		{what: "a doctor result", at: 67 * time.Second, event: func() { m.Doctor(map[string]bool{"imds.v2": true}) }, write: true},
		{what: "the same doctor result", at: 68 * time.Second, event: func() { m.Doctor(map[string]bool{"imds.v2": true}) }, write: false},
		{what: "the clock stepped back", at: 30 * time.Second, write: true},
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		if s.observe != nil {
			m.Observe(s.observe, s.changes, time.Millisecond, now)
		}
		if s.event != nil {
			s.event()
		}
		if err := m.Flush(now); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		if got := rewritten(t, path, ino); got != s.write {
			t.Errorf("%s: textfile rewritten = %v, want %v", s.what, got, s.write)
		}
		ino = stamp(t, path)
	}
	parseFile(t, path)
}

func TestFlushErrorNamesKeyAndIsNotRepeatedEveryCall(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	m := New(Config{Textfile: filepath.Join(blocker, "ecs_remediator.prom")})
	err := m.Flush(t0)
	if err == nil || !strings.Contains(err.Error(), "metrics.textfile") || !strings.Contains(err.Error(), blocker) {
		t.Fatalf("Flush error = %v, want one naming metrics.textfile and %s", err, blocker)
	}
	if err := m.Flush(t0.Add(time.Second)); err != nil {
		t.Errorf("second Flush without a change retried at once: %v", err)
	}
	m.AgentRestarted()
	if err := m.Flush(t0.Add(2 * time.Second)); err == nil {
		t.Error("Flush after a change did not retry the failed write")
	}
	if err := m.Flush(t0.Add(2*time.Second + RefreshInterval)); err == nil {
		t.Error("Flush a minute later did not retry the failed write")
	}
}

func TestFlushWithoutTextfileWritesNothing(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, setting := range []string{"", policy.Resolve(policy.Off)} {
		m := New(Config{Textfile: setting})
		m.Observe([]finding.Finding{f(iamRole, finding.Drift)}, nil, time.Millisecond, t0)
		if err := m.Flush(t0); err != nil {
			t.Errorf("Textfile %q: %v", setting, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Flush without a textfile created %v", ents)
	}
}
