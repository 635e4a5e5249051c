package reliability

import (
	"fmt"
	"math/rand"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// driftedBody is a large-ish ecs.config (about 900 KiB of comments and
// unknown keys, under the 1 MiB limit) so that a repair's write, fsync and
// rename take a moment and a kill can land in the middle of one. tag makes
// every iteration's content unique, so an old file can never pass for a
// new one.
func driftedBody(tag int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# generated for kill iteration %d\nECS_CLUSTER=prod\n", tag)
	for i := 0; b.Len() < 900<<10; i++ {
		fmt.Fprintf(&b, "# comment line %d: the quick brown fox jumps over the lazy dog\nUNKNOWN_KEY_%d=value %d %d\n", i, i, i, tag)
	}
	b.WriteString("ECS_ENABLE_TASK_IAM_ROLE=false\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=\"true\"\n")
	return b.String()
}

// repairedBody is what a complete repair of driftedBody(tag) must give:
// only the two deciding lines rewritten, every other byte kept.
func repairedBody(tag int) string {
	return strings.Replace(driftedBody(tag),
		"ECS_ENABLE_TASK_IAM_ROLE=false\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=\"true\"\n",
		"ECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n", 1)
}

// Crash safety: the daemon is killed with SIGKILL at random moments of a
// repair, again and again. After every kill ecs.config is byte for byte
// either the drifted original or the complete repair (never partial, never
// empty), the backup is either absent or a complete copy of the original it
// was taken from and, once taken, never changes, and temp files a killed
// run left behind are removed by the next run (they never pile up).
func TestKillDuringRepair(t *testing.T) {
	kills := 200
	if testing.Short() {
		kills = 50
	}
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("kill timing seed %d", seed)

	// Calibrate on a separate host: how long from start to a complete
	// repair here. Half the kills are spread over the whole run, half
	// around the moment the repair lands, where a kill is most likely to
	// catch a write in flight. Nothing here is asserted about time.
	var landed time.Duration
	{
		h := newHost(t, driftedBody(-1))
		start := time.Now()
		d := startDaemon(t, h.policy)
		eventually(t, "calibration repair", d, func() bool {
			time.Sleep(time.Millisecond)
			b, _ := os.ReadFile(h.ecsConfig)
			return string(b) == repairedBody(-1)
		})
		landed = time.Since(start)
		d.stop(t)
	}
	killAfter := func() time.Duration {
		if rng.Intn(2) == 0 {
			return time.Duration(rng.Int63n(int64(max(30*time.Millisecond, landed*3/2)) + 1))
		}
		return landed/2 + time.Duration(rng.Int63n(int64(landed)+1))/2
	}
	t.Logf("a repair lands about %s after start", landed)

	h := newHost(t, "")
	dir := h.dir + "/etc/ecs"
	// Phase A (the first quarter): no backup yet, as on a fresh host; a
	// kill may land in the middle of taking it. Phase B: the backup was
	// taken from phase B's first original and must never change.
	phaseB := kills / 4
	var firstOriginal string
	var old, repaired, leftTemp int
	for i := 0; i < kills; i++ {
		orig := driftedBody(i)
		if err := os.WriteFile(h.ecsConfig, []byte(orig), 0o644); err != nil {
			t.Fatal(err)
		}
		if i <= phaseB {
			os.Remove(h.backup)
		}
		if i == phaseB {
			// Phase B starts from a completed repair: its backup is the
			// very first original of the phase.
			if r := run(t, "apply", "--config", h.policy); r.code != 0 {
				t.Fatalf("apply: exit %d\n%s", r.code, r.stderr)
			}
			firstOriginal = orig
			if b, _ := os.ReadFile(h.backup); string(b) != firstOriginal {
				t.Fatalf("apply's backup is not the original (%d bytes)", len(b))
			}
			continue
		}

		d := startDaemon(t, h.policy)
		time.Sleep(killAfter())
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done

		b, err := os.ReadFile(h.ecsConfig)
		if err != nil {
			t.Fatalf("kill %d: ecs.config unreadable after the kill: %v", i, err)
		}
		switch string(b) {
		case orig:
			old++
		case repairedBody(i):
			repaired++
		default:
			t.Fatalf("kill %d: ecs.config is neither the original nor the repair: %d bytes (original %d, repaired %d), ends %q\nlog:\n%s",
				i, len(b), len(orig), len(repairedBody(i)), tail(b), d.logs.String())
		}
		bk, err := os.ReadFile(h.backup)
		switch {
		case i < phaseB && os.IsNotExist(err):
		case i < phaseB && string(bk) == orig:
		case i > phaseB && string(bk) == firstOriginal:
		default:
			t.Fatalf("kill %d: backup damaged: %v, %d bytes, ends %q", i, err, len(bk), tail(bk))
		}
		// Every run removes the temp files of killed runs before it
		// writes, so at most this run's own two (ecs.config and its
		// backup) can be there: they never pile up.
		if s := strays(t, dir); len(s) > 2 {
			t.Fatalf("kill %d: temp files pile up: %v", i, s)
		} else if len(s) > 0 {
			leftTemp++
		}
		// The file mode survives every repair.
		if fi, err := os.Stat(h.ecsConfig); err != nil || fi.Mode().Perm() != 0o644 {
			t.Fatalf("kill %d: mode of ecs.config: %v %v", i, fi.Mode(), err)
		}
	}
	t.Logf("after %d kills: %d left the original, %d the repair, %d left a temp file behind", kills-1, old, repaired, leftTemp)

	// A run after all of this repairs the file, keeps the backup and
	// removes every temp file a killed run left behind.
	orig := driftedBody(kills)
	os.WriteFile(h.ecsConfig, []byte(orig), 0o644)
	if r := run(t, "apply", "--config", h.policy); r.code != 0 {
		t.Fatalf("apply after the kills: exit %d\n%s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(h.ecsConfig); string(b) != repairedBody(kills) {
		t.Fatalf("apply after the kills did not repair the file (%d bytes)", len(b))
	}
	if b, _ := os.ReadFile(h.backup); string(b) != firstOriginal {
		t.Fatalf("backup changed by the final apply")
	}
	if s := strays(t, dir); len(s) > 0 {
		t.Fatalf("temp files of killed runs are still there after a complete run: %v", s)
	}
	// The kills must have exercised both outcomes, or the test proved
	// nothing about the window in between.
	if old == 0 || repaired == 0 {
		t.Fatalf("the kills never landed on both sides of a repair (original %d, repaired %d): widen the window", old, repaired)
	}
}

func tail(b []byte) string {
	if len(b) > 60 {
		b = b[len(b)-60:]
	}
	return string(b)
}
