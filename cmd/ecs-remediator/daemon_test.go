package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
	"github.com/ecs-remediator/ecs-remediator/test/testbin"
)

// syncBuffer collects the daemon's log lines while it runs.
type syncBuffer = testbin.Log

// eventually polls cond until it holds or the (generous) limit passes; it
// asserts behaviour, never speed.
func eventually(t *testing.T, what string, logs *syncBuffer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not reached\ndaemon log:\n%s", what, logs.String())
}

func fileHas(path, s string) func() bool {
	return func() bool {
		b, err := os.ReadFile(path)
		return err == nil && strings.Contains(string(b), s)
	}
}

// The daemon binary in a private namespace repairs every kind of drift
// through its watchers, logs one line per repair, and keeps the metrics
// textfile in step.
func TestDaemonRepairsDrift(t *testing.T) {
	for _, b := range nstest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			nstest.Require(t, b.Iptables, b.Save, b.Restore, "ip")
			h := newHost(t, good)
			textfile := filepath.Join(h.dir, "metrics/ecs_remediator.prom")
			os.MkdirAll(filepath.Dir(textfile), 0o755)
			p := h.netPolicy(b.Iptables)
			p.ECSConfigBase = policy.Off
			p.ResyncInterval, p.PollInterval = 60*time.Second, 200*time.Millisecond
			p.Persist.Iptables, p.Persist.Sysctl = filepath.Join(h.dir, "rules.v4"), filepath.Join(h.dir, "90-ecs.conf")
			p.Agent.Restart = policy.RestartNever
			p.Metrics.Textfile = textfile
			h.writePolicy(t, p)

			nstest.Run(t, func() {
				logs := &syncBuffer{}
				cmd := exec.Command(bin, "run", "--config", h.policy)
				cmd.Stdout, cmd.Stderr = logs, logs
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				defer func() {
					cmd.Process.Signal(syscall.SIGTERM)
					cmd.Wait()
				}()
				save := func() string { return nstest.Sh(t, b.Save+" -t nat") }
				eventually(t, "first reconcile installs the rules", logs, func() bool {
					return strings.Contains(save(), "--to-ports 51679") && strings.Contains(logs.String(), "is running")
				})

				// A hand edit in place.
				os.WriteFile(h.ecsConfig, []byte("ECS_CLUSTER=prod\nECS_ENABLE_TASK_IAM_ROLE=false\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"), 0o644)
				eventually(t, "in-place edit repaired", logs, fileHas(h.ecsConfig, "ECS_ENABLE_TASK_IAM_ROLE=true\n"))

				// An editor's write-temp-then-rename.
				tmp := h.ecsConfig + ".swp"
				os.WriteFile(tmp, []byte("ECS_ENABLE_TASK_IAM_ROLE=\"true\"\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"), 0o644)
				os.Rename(tmp, h.ecsConfig)
				eventually(t, "rename-over repaired", logs, func() bool {
					b, _ := os.ReadFile(h.ecsConfig)
					return string(b) == "ECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n"
				})

				// Deletion of the file.
				os.Remove(h.ecsConfig)
				eventually(t, "deleted file re-created", logs, fileHas(h.ecsConfig, "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true"))

				// iptables -t nat -F, then one deleted rule.
				nstest.Sh(t, b.Iptables+" -t nat -F")
				eventually(t, "flushed nat rules back", logs, func() bool {
					s := save()
					return strings.Contains(s, "--to-ports 51679") && strings.Contains(s, "--to-destination 127.0.0.1:51679")
				})
				nstest.Sh(t, b.Iptables+" -t nat -D OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679")
				eventually(t, "deleted rule back", logs, func() bool { return strings.Count(save(), "--to-ports 51679") == 1 })

				// The log says what drifted and what was done, per item.
				out := logs.String()
				for _, want := range []string{"ecs_config.ECS_ENABLE_TASK_IAM_ROLE", "network.credentials_redirect", "network.credentials_dnat"} {
					if !strings.Contains(out, want) {
						t.Errorf("no log line for %s:\n%s", want, out)
					}
				}

				// The metrics textfile parses with Prometheus' own parser
				// and counts the repairs.
				eventually(t, "textfile counts the repairs", logs, func() bool {
					f, err := os.Open(textfile)
					if err != nil {
						return false
					}
					defer f.Close()
					p := expfmt.NewTextParser(model.UTF8Validation)
					mfs, err := p.TextToMetricFamilies(f)
					if err != nil {
						t.Fatalf("textfile does not parse: %v", err)
					}
					rep := mfs["ecs_remediator_repairs_total"]
					comp := mfs["ecs_remediator_item_compliant"]
					if rep == nil || comp == nil {
						return false
					}
					var redirects float64
					for _, m := range rep.Metric {
						for _, l := range m.Label {
							if l.GetValue() == "network.credentials_redirect" {
								redirects = m.Counter.GetValue()
							}
						}
					}
					allOK := true
					for _, m := range comp.Metric {
						allOK = allOK && m.Gauge.GetValue() == 1
					}
					return redirects >= 2 && allOK
				})

				// route_localnet flipped back: seen on the next reconcile
				// (the legacy poll, or any event on nft).
				os.WriteFile("/proc/sys/net/ipv4/conf/all/route_localnet", []byte("0"), 0o644)
				nstest.Sh(t, b.Iptables+" -t nat -F") // an event so nft reconciles too
				eventually(t, "route_localnet back to 1", logs, func() bool {
					v, _ := os.ReadFile("/proc/sys/net/ipv4/conf/all/route_localnet")
					return strings.TrimSpace(string(v)) == "1"
				})
			})
		})
	}
}

// A burst of edits within a short time is at most two repairs and one
// restart request: the first finished write is repaired at once (no
// debounce on a finished write, issue 19), the rest of the burst once, a
// debounce after that repair.
func TestDaemonBurstIsOneWrite(t *testing.T) {
	h := newHost(t, good, func(p *policy.Policy) { p.Debounce = 300 * time.Millisecond })
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "run", "--config", h.policy)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	eventually(t, "daemon up", logs, func() bool { return strings.Contains(logs.String(), "is running") })
	// A burst is writes closer together than the debounce (300ms). On a
	// loaded machine this loop's 10ms sleeps can stretch past it: each
	// such gap ends one burst and starts another, which may be repaired
	// on its own.
	bursts, last := 1, time.Now()
	for i := 0; i < 20; i++ {
		if now := time.Now(); now.Sub(last) >= 300*time.Millisecond {
			bursts++
		}
		os.WriteFile(h.ecsConfig, []byte(fmt.Sprintf("ECS_CLUSTER=c%d\nECS_ENABLE_TASK_IAM_ROLE=false\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n", i)), 0o644)
		last = time.Now()
		time.Sleep(10 * time.Millisecond)
	}
	eventually(t, "burst repaired", logs, fileHas(h.ecsConfig, "ECS_ENABLE_TASK_IAM_ROLE=true"))
	time.Sleep(time.Second)
	// A repair rewrites the flag's line, or appends it when the daemon read
	// the file between a write's truncate and its data (unset).
	rl := logs.String()
	if n := strings.Count(rl, "ecs_config.ECS_ENABLE_TASK_IAM_ROLE: rewrote line") + strings.Count(rl, "ecs_config.ECS_ENABLE_TASK_IAM_ROLE: appended line"); n < 1 || n > 2*bursts {
		t.Fatalf("%d repairs for %d burst(s), want 1 to %d (per burst: its first write at once, the rest once):\n%s", n, bursts, 2*bursts, logs.String())
	}
	if b, _ := os.ReadFile(h.ecsConfig); !strings.Contains(string(b), "ECS_CLUSTER=c19") {
		t.Fatalf("the last edit was lost: %q", b)
	}
	// One restart request for the burst: its one attempt is either skipped
	// (the unit does not exist on a host with systemd) or fails (no D-Bus
	// here); retries of the same request count attempts 2, 3, ...
	eventually(t, "the restart attempt", logs, func() bool {
		return strings.Contains(logs.String(), `"action": "restart-`)
	})
	time.Sleep(500 * time.Millisecond)
	l := logs.String()
	if n := strings.Count(l, `"action": "restart-skipped"`) + strings.Count(l, `"action": "restart-failed", "attempt": 1,`); n != 1 {
		t.Fatalf("%d restart requests for one burst, want 1:\n%s", n, l)
	}
}
