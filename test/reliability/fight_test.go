package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const roleItem = "ecs_config.ECS_ENABLE_TASK_IAM_ROLE"

// repairsOf counts the daemon's repair lines for item in log.
func repairsOf(log, item string) int {
	return strings.Count(log, item+": rewrote line") + strings.Count(log, item+": appended line")
}

// Fight: another tool sets ECS_ENABLE_TASK_IAM_ROLE=false every 100 ms
// (the way configuration tools write: temp file, rename). The daemon logs
// the fight exactly once, backs off (its repairs in the last third of the
// run are a small fraction of the flips there), does not spin (its CPU time
// stays a small fraction of the wall time), keeps running and stops
// cleanly on SIGTERM. A short resync interval is used on purpose: the
// safety-net resync must not undo the back-off.
func TestFightBacksOff(t *testing.T) {
	dur := 30 * time.Second
	if testing.Short() {
		dur = 8 * time.Second
	}
	good := "ECS_CLUSTER=prod\nECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"
	bad := "ECS_CLUSTER=prod\nECS_ENABLE_TASK_IAM_ROLE=false\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"
	h := newHost(t, good, resync1s)
	d := startDaemon(t, h.policy)
	d.waitUp(t)
	pid := d.cmd.Process.Pid
	cpu0, wall0 := cpuSeconds(t, pid), time.Now()

	var flips, lateFlips atomic.Int64
	lateFrom := wall0.Add(dur * 2 / 3)
	var lateLogAt int
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			tmp := filepath.Join(filepath.Dir(h.ecsConfig), fmt.Sprintf(".flipper-%d", i))
			if err := os.WriteFile(tmp, []byte(bad), 0o644); err == nil && os.Rename(tmp, h.ecsConfig) == nil {
				flips.Add(1)
				if time.Now().After(lateFrom) {
					lateFlips.Add(1)
				}
			}
		}
	}()
	time.Sleep(time.Until(lateFrom))
	lateLogAt = len(d.logs.String())
	time.Sleep(time.Until(wall0.Add(dur)))
	close(stop)
	<-done
	wall := time.Since(wall0).Seconds()
	cpu := cpuSeconds(t, pid) - cpu0

	log := d.logs.String()
	total, late := repairsOf(log, roleItem), repairsOf(log[lateLogAt:], roleItem)
	t.Logf("%.1fs: %d flips (%d in the last third), %d repairs (%d in the last third), CPU %.2fs", wall, flips.Load(), lateFlips.Load(), total, late, cpu)

	if flips.Load() < int64(dur/(100*time.Millisecond))/2 {
		t.Fatalf("the flipper managed only %d flips: the test did not fight", flips.Load())
	}
	// Exactly one fight-detected line, for this item.
	var fightLines []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `"action": "fight-detected"`) {
			fightLines = append(fightLines, l)
		}
	}
	if len(fightLines) != 1 || !strings.Contains(fightLines[0], `"item": "`+roleItem+`"`) {
		t.Fatalf("want exactly one fight-detected line for %s, got %d:\n%s\nlog:\n%s", roleItem, len(fightLines), strings.Join(fightLines, "\n"), log)
	}
	// Backed off: the fight is detected after 5 repairs, then each repair
	// doubles the wait (1 s, 2 s, 4 s, ...). In the last third of the run
	// that leaves a handful at most, against dozens of flips.
	if late > 3 || int64(late)*10 > lateFlips.Load() {
		t.Fatalf("no back-off: %d repairs in the last third of the run against %d flips\nlog:\n%s", late, lateFlips.Load(), log)
	}
	if total < 5 {
		t.Fatalf("only %d repairs: the daemon did not hold the repaired state\nlog:\n%s", total, log)
	}
	// Not spinning: a busy loop would burn close to a whole core.
	if cpu > 0.2*wall {
		t.Fatalf("daemon used %.2fs of CPU in %.1fs of fight: it is spinning", cpu, wall)
	}
	// Still running, and stops cleanly on SIGTERM.
	d.stop(t)
}
