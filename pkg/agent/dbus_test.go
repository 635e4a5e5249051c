package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	godbus "github.com/godbus/dbus/v5"
)

// The D-Bus client is tested against a real dbus-daemon (a private bus in
// a temp dir) on which the test serves the few methods of systemd's
// manager the client calls, with systemd's names and signatures. The test
// against real systemd is in the e2e suite (nspawn).

func TestDBusWithoutBusFailsNamingTheSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "no-bus-here")
	d := NewDBus(DBusOptions{Endpoints: []Endpoint{{Address: "unix:path=" + sock}, {Address: "unix:path=" + sock + "-private", Direct: true}}})
	defer d.Close()
	ctx := context.Background()
	_, err := d.ActiveState(ctx, "ecs.service")
	checkErr(t, "ActiveState", err, sock, sock+"-private", "connect to systemd over D-Bus")
	checkErr(t, "TryRestart", d.TryRestart(ctx, "ecs.service"), sock)
	checkErr(t, "Reload", d.Reload(ctx), sock)
}

func TestDefaultEndpoints(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "")
	eps := DefaultEndpoints()
	if eps[0] != (Endpoint{Address: "unix:path=/run/dbus/system_bus_socket"}) {
		t.Errorf("first endpoint %v, want the system bus", eps[0])
	}
	if os.Geteuid() == 0 && (len(eps) != 2 || eps[1] != (Endpoint{Address: "unix:path=/run/systemd/private", Direct: true})) {
		t.Errorf("as root the private socket must follow: %v", eps)
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/tmp/x")
	if DefaultEndpoints()[0].Address != "unix:path=/tmp/x" {
		t.Error("DBUS_SYSTEM_BUS_ADDRESS is not honoured")
	}
}

func checkErr(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not contain %q", what, err, w)
		}
	}
}

func TestDBusAgainstABus(t *testing.T) {
	bus := startBus(t)
	sd := serveSystemd(t, bus.addr)
	d := NewDBus(DBusOptions{Endpoints: []Endpoint{{Address: bus.addr}}, JobWait: 2 * time.Second})
	defer d.Close()
	ctx := context.Background()

	if s, err := d.ActiveState(ctx, "ecs.service"); err != nil || s != "active" {
		t.Fatalf("ActiveState = %q, %v", s, err)
	}
	sd.set("inactive", "done")
	if s, _ := d.ActiveState(ctx, "ecs.service"); s != "inactive" {
		t.Errorf("ActiveState = %q, want inactive", s)
	}
	_, err := d.ActiveState(ctx, "nosuch.service")
	checkErr(t, "ActiveState of an unknown unit", err, "nosuch.service")

	if err := d.TryRestart(ctx, "ecs.service"); err != nil {
		t.Errorf("TryRestart: %v", err)
	}
	sd.set("active", "failed")
	checkErr(t, "TryRestart of a failing unit", d.TryRestart(ctx, "ecs.service"), "ecs.service", `"failed"`)

	// A job that is still running after JobWait is left to systemd.
	sd.set("active", "")
	d2 := NewDBus(DBusOptions{Endpoints: []Endpoint{{Address: bus.addr}}, JobWait: 50 * time.Millisecond})
	defer d2.Close()
	if err := d2.TryRestart(ctx, "ecs.service"); err != nil {
		t.Errorf("TryRestart of a slow job: %v", err)
	}

	// A job that fails after JobWait: TryRestart has returned, the result
	// still reaches LateResult.
	late := make(chan string, 1)
	d3 := NewDBus(DBusOptions{Endpoints: []Endpoint{{Address: bus.addr}}, JobWait: 50 * time.Millisecond,
		LateResult: func(unit, result string) { late <- unit + " " + result }})
	defer d3.Close()
	sd.mu.Lock()
	sd.result, sd.delay = "failed", 500*time.Millisecond
	sd.mu.Unlock()
	if err := d3.TryRestart(ctx, "ecs.service"); err != nil {
		t.Errorf("TryRestart of a job that fails late: %v", err)
	}
	select {
	case got := <-late:
		if got != "ecs.service failed" {
			t.Errorf("LateResult got %q, want \"ecs.service failed\"", got)
		}
	case <-time.After(5 * time.Second):
		t.Error("LateResult was not called for a job that failed after JobWait")
	}
	sd.mu.Lock()
	sd.result, sd.delay = "done", 0
	sd.mu.Unlock()

	if err := d.Reload(ctx); err != nil {
		t.Errorf("Reload: %v", err)
	}
	restarts, reloads := sd.counts()
	if restarts != 4 || reloads != 1 {
		t.Errorf("systemd saw %d try-restarts and %d reloads, want 4 and 1", restarts, reloads)
	}

	// The bus goes away and comes back: the client reconnects.
	bus.stop(t)
	if _, err := d.ActiveState(ctx, "ecs.service"); err == nil {
		t.Error("ActiveState with the bus gone: no error")
	}
	bus = startBusAt(t, bus.dir)
	serveSystemd(t, bus.addr)
	if s, err := d.ActiveState(ctx, "ecs.service"); err != nil || s != "active" {
		t.Errorf("after the bus came back: ActiveState = %q, %v", s, err)
	}
}

// The Restarter drives the D-Bus client end to end.
func TestRestarterOverDBus(t *testing.T) {
	bus := startBus(t)
	sd := serveSystemd(t, bus.addr)
	d := NewDBus(DBusOptions{Endpoints: []Endpoint{{Address: bus.addr}}})
	defer d.Close()
	r := NewRestarter(d, Config{Unit: "ecs.service", MinRestartInterval: time.Minute})
	now := time.Now()
	r.Request(now, "agent.proxy_dropin changed", true)
	r.Request(now, "ecs_config.task_iam_role changed", false)
	if out, err := r.Step(context.Background(), now); out != Restarted || err != nil {
		t.Fatalf("Step = %d, %v", out, err)
	}
	if restarts, reloads := sd.counts(); restarts != 1 || reloads != 1 {
		t.Errorf("systemd saw %d try-restarts and %d reloads, want 1 and 1", restarts, reloads)
	}
	// A repair the agent's last start already saw (its start is later)
	// gives no restart; one made after it does.
	before := time.Now().Add(-time.Second)
	r.Request(before, "ecs_config.task_iam_role changed", false)
	if out, err := r.Step(context.Background(), before.Add(2*time.Minute)); out != StartedAfter || err != nil {
		t.Fatalf("Step for a repair older than the agent's start = %d, %v", out, err)
	}
	if restarts, _ := sd.counts(); restarts != 1 {
		t.Errorf("systemd saw %d try-restarts, want still 1", restarts)
	}
}

type testBus struct {
	dir, addr string
	cmd       *exec.Cmd
}

func startBus(t *testing.T) *testBus { return startBusAt(t, t.TempDir()) }

// startBusAt runs a private dbus-daemon listening in dir.
func startBusAt(t *testing.T, dir string) *testBus {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		msg := "needs dbus-daemon (apt-get install -y dbus-daemon; systemd-container pulls it in)"
		if os.Getenv("ECS_REMEDIATOR_REQUIRE_NS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	sock := filepath.Join(dir, "bus")
	os.Remove(sock)
	conf := filepath.Join(dir, "bus.conf")
	err = os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=`+sock+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr // "Failed to set fd limit" and such; shown on failure
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &testBus{dir: dir, cmd: cmd}
	t.Cleanup(func() { b.stop(t) })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.stop(t)
		t.Fatalf("dbus-daemon did not print its address: %v\n%s", err, stderr.String())
	}
	b.addr = strings.TrimSpace(line)
	return b
}

func (b *testBus) stop(t *testing.T) {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	b.cmd.Wait()
	b.cmd = nil
}

// fakeSystemd serves org.freedesktop.systemd1's TryRestartUnit (with the
// JobRemoved signal), Reload, and the ActiveState property of one unit.
type fakeSystemd struct {
	conn *godbus.Conn
	mu   sync.Mutex
	// state is ecs.service's ActiveState; result the next job result
	// ("" = the job never finishes).
	state, result     string
	restarts, reloads int
	job               uint32
	startedUs         uint64        // InactiveExitTimestamp: set by each restart
	delay             time.Duration // before a job's JobRemoved signal
}

func (f *fakeSystemd) set(state, result string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state, f.result = state, result
}

func (f *fakeSystemd) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restarts, f.reloads
}

func (f *fakeSystemd) TryRestartUnit(name, mode string) (godbus.ObjectPath, *godbus.Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name != "ecs.service" || mode != "replace" {
		return "", godbus.MakeFailedError(fmt.Errorf("unexpected TryRestartUnit(%q, %q)", name, mode))
	}
	f.restarts++
	f.startedUs = uint64(time.Now().UnixMicro())
	f.job++
	id, result, delay := f.job, f.result, f.delay
	path := godbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", id))
	if result != "" {
		go func() {
			time.Sleep(delay)
			f.conn.Emit("/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager.JobRemoved", id, path, name, result)
		}()
	}
	return path, nil
}

func (f *fakeSystemd) Reload() *godbus.Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	return nil
}

type unitProperties struct{ f *fakeSystemd }

func (p unitProperties) Get(iface, prop string) (godbus.Variant, *godbus.Error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	switch {
	case iface == "org.freedesktop.systemd1.Unit" && prop == "ActiveState":
		return godbus.MakeVariant(p.f.state), nil
	case iface == "org.freedesktop.systemd1.Unit" && prop == "InactiveExitTimestamp":
		return godbus.MakeVariant(p.f.startedUs), nil
	}
	return godbus.Variant{}, godbus.MakeFailedError(fmt.Errorf("unexpected Get(%q, %q)", iface, prop))
}

func serveSystemd(t *testing.T, addr string) *fakeSystemd {
	t.Helper()
	conn, err := godbus.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Auth(nil); err != nil {
		t.Fatal(err)
	}
	if err := conn.Hello(); err != nil {
		t.Fatal(err)
	}
	f := &fakeSystemd{conn: conn, state: "active", result: "done"}
	if err := conn.Export(f, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"); err != nil {
		t.Fatal(err)
	}
	// systemd's object path for ecs.service (PathBusEscape: "." -> _2e).
	if err := conn.Export(unitProperties{f}, "/org/freedesktop/systemd1/unit/ecs_2eservice", "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName("org.freedesktop.systemd1", godbus.NameFlagDoNotQueue); err != nil || reply != godbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.freedesktop.systemd1: %v %v", reply, err)
	}
	return f
}
