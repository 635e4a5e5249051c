package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// On the legacy backend a rule deleted with iptables-legacy is repaired
// through the xtables lock's events, not the poll (an hour here), and the
// daemon's own iptables-legacy-restore, which takes the lock too, does not
// set off a loop of passes.
func TestDaemonLegacyLockEvents(t *testing.T) {
	b := nstest.Backends[1]
	if b.Name != "legacy" {
		t.Fatalf("nstest.Backends[1] is %s, want legacy", b.Name)
	}
	nstest.Require(t, b.Iptables, b.Save, b.Restore, "ip")
	h := newHost(t, good)
	lock := filepath.Join(h.dir, "xtables.lock")
	p := h.netPolicy(b.Iptables)
	p.ECSConfigBase = policy.Off
	p.ResyncInterval, p.PollInterval = time.Hour, time.Hour
	p.LogLevel = "debug"
	p.Persist.Iptables, p.Persist.Sysctl = policy.Off, policy.Off
	p.Agent.Restart = policy.RestartNever
	p.Docker.NoProxy = policy.AutoOff
	h.writePolicy(t, p)
	env := append(os.Environ(), "XTABLES_LOCKFILE="+lock)
	nstest.Run(t, func() {
		logs := &syncBuffer{}
		cmd := exec.Command(bin, "run", "--config", h.policy)
		cmd.Stdout, cmd.Stderr, cmd.Env = logs, logs, env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}()
		count := func() int { return strings.Count(nstest.Sh(t, b.Save+" -t nat"), "--to-ports 51679") }
		eventually(t, "first reconcile installs the rules", logs, func() bool {
			return count() == 1 && strings.Contains(logs.String(), "is running")
		})
		del := exec.Command(b.Iptables, strings.Fields("-t nat -D OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679")...)
		del.Env = env
		if out, err := del.CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		eventually(t, "deleted rule back through the lock's event", logs, func() bool { return count() == 1 })
		eventually(t, "the repair line", logs, func() bool {
			return strings.Contains(logs.String(), "network.credentials_redirect:")
		})
		// Quiet afterwards: the repair's own lock events are dropped and
		// one more look is taken, no more. (A loop would log an event per
		// pass, hundreds a second.)
		time.Sleep(time.Second)
		n := strings.Count(logs.String(), `"source": "xtables-lock"`)
		if n == 0 {
			t.Errorf("no xtables-lock event logged: the repair came some other way\n%s", logs.String())
		}
		if n > 6 {
			t.Errorf("%d xtables-lock events after one deletion: the daemon's own passes feed back\n%s", n, logs.String())
		}
	})
}
