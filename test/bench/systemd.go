package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	godbus "github.com/godbus/dbus/v5"
)

// There is no systemd in the namespace. Like pkg/agent/dbus_test.go, the
// bench runs a private dbus-daemon (its socket in a temp dir) and serves
// there the three methods of systemd's manager the daemon calls, for the
// bench's agent unit, which this fake reports "active". Each daemon is
// pointed at it with DBUS_SYSTEM_BUS_ADDRESS, so it never reaches a real
// systemd, and every try-restart it sends is counted here.

// agentUnit is the (absent) unit every bench policy names.
const agentUnit = "ecs-remediator-bench-absent.service"

type fakeSystemd struct {
	addr string
	bus  *exec.Cmd
	conn *godbus.Conn

	mu       sync.Mutex
	restarts int
	job      uint32
}

// pathBusEscape is systemd's object-path escaping of a unit name.
func pathBusEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return b.String()
}

func startFakeSystemd(dir string) (*fakeSystemd, error) {
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		return nil, fmt.Errorf("dbus-daemon not found (apt-get install -y dbus-daemon): %w", err)
	}
	sock := filepath.Join(dir, "bus")
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
		return nil, err
	}
	f := &fakeSystemd{bus: exec.Command(bin, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address")}
	out, err := f.bus.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := f.bus.Start(); err != nil {
		return nil, fmt.Errorf("start dbus-daemon: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("dbus-daemon did not print its address: %w", err)
	}
	f.addr = strings.TrimSpace(line)
	if f.conn, err = godbus.Dial(f.addr); err != nil {
		f.Close()
		return nil, fmt.Errorf("dial private bus: %w", err)
	}
	if err := f.conn.Auth(nil); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.conn.Hello(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.conn.Export(manager{f}, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.conn.Export(unitProps{}, godbus.ObjectPath("/org/freedesktop/systemd1/unit/"+pathBusEscape(agentUnit)), "org.freedesktop.DBus.Properties"); err != nil {
		f.Close()
		return nil, err
	}
	if reply, err := f.conn.RequestName("org.freedesktop.systemd1", godbus.NameFlagDoNotQueue); err != nil || reply != godbus.RequestNameReplyPrimaryOwner {
		f.Close()
		return nil, fmt.Errorf("own org.freedesktop.systemd1 on the private bus: %v %v", reply, err)
	}
	return f, nil
}

// Restarts is how many try-restarts of the agent unit were asked for.
func (f *fakeSystemd) Restarts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restarts
}

func (f *fakeSystemd) Close() {
	if f.conn != nil {
		f.conn.Close()
	}
	if f.bus != nil && f.bus.Process != nil {
		f.bus.Process.Signal(syscall.SIGTERM)
		f.bus.Wait()
	}
}

type manager struct{ f *fakeSystemd }

func (m manager) TryRestartUnit(name, mode string) (godbus.ObjectPath, *godbus.Error) {
	if name != agentUnit {
		return "", godbus.MakeFailedError(fmt.Errorf("unit %s not loaded", name))
	}
	m.f.mu.Lock()
	m.f.restarts++
	m.f.job++
	id := m.f.job
	m.f.mu.Unlock()
	path := godbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", id))
	// The job ends a little after the reply, as with real systemd (a
	// signal sent before the reply is missed by go-systemd, which then
	// waits its whole JobWait).
	time.AfterFunc(20*time.Millisecond, func() {
		m.f.conn.Emit("/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager.JobRemoved", id, path, name, "done")
	})
	return path, nil
}

func (m manager) Reload() *godbus.Error { return nil }

type unitProps struct{}

func (unitProps) Get(iface, prop string) (godbus.Variant, *godbus.Error) {
	if iface != "org.freedesktop.systemd1.Unit" || prop != "ActiveState" {
		return godbus.Variant{}, godbus.MakeFailedError(fmt.Errorf("unexpected Get(%q, %q)", iface, prop))
	}
	return godbus.MakeVariant("active"), nil
}
