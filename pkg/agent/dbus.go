package agent

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

// Endpoint is one way to reach systemd's manager over D-Bus.
type Endpoint struct {
	// Address is a D-Bus address ("unix:path=/run/dbus/system_bus_socket").
	Address string
	// Direct is true for systemd's private socket (/run/systemd/private):
	// a peer-to-peer connection without a bus daemon, so no Hello.
	Direct bool
}

// DefaultEndpoints are the ones `systemctl` would use, in the order of
// go-systemd's dbus.NewWithContext: the system bus
// ($DBUS_SYSTEM_BUS_ADDRESS or /run/dbus/system_bus_socket), then, as
// root, systemd's private socket (which works without dbus-daemon).
func DefaultEndpoints() []Endpoint {
	addr := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS")
	if addr == "" {
		addr = "unix:path=/run/dbus/system_bus_socket"
	}
	eps := []Endpoint{{Address: addr}}
	if os.Geteuid() == 0 {
		eps = append(eps, Endpoint{Address: "unix:path=/run/systemd/private", Direct: true})
	}
	return eps
}

// DBusOptions tune the D-Bus client. Zero values take the defaults.
type DBusOptions struct {
	// Endpoints are tried in order; nil means DefaultEndpoints().
	Endpoints []Endpoint
	// CallTimeout bounds each call when ctx has no earlier deadline
	// (default 5s): the daemon's single loop must not hang on D-Bus.
	CallTimeout time.Duration
	// JobWait is how long TryRestart waits for the restart job to finish
	// (default 1s): the daemon's loop repairs nothing while it waits. A job
	// still running then is left to systemd, which carries it out;
	// TryRestart returns nil. Only a job that ends badly within JobWait is
	// an error.
	JobWait time.Duration
	// LateResult, when set, is called (from another goroutine) with the
	// result of a job that was still running after JobWait, once systemd
	// reports it, so that a restart that fails slowly is still logged.
	LateResult func(unit, result string)
}

// DBus implements Units with systemd's D-Bus API. It connects lazily on
// the first call and again after the connection dropped (systemd
// re-executed, dbus-daemon restarted). It is safe for concurrent use.
type DBus struct {
	o    DBusOptions
	mu   sync.Mutex
	conn *sddbus.Conn
}

// NewDBus returns a client; nothing is connected yet.
func NewDBus(o DBusOptions) *DBus {
	if o.Endpoints == nil {
		o.Endpoints = DefaultEndpoints()
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 5 * time.Second
	}
	if o.JobWait <= 0 {
		o.JobWait = time.Second
	}
	return &DBus{o: o}
}

// Close drops the connection.
func (d *DBus) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
}

// connect returns a live connection, dialing the endpoints in order.
func (d *DBus) connect() (*sddbus.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil && d.conn.Connected() {
		return d.conn, nil
	}
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	var errs []string
	for _, ep := range d.o.Endpoints {
		ep := ep
		c, err := sddbus.NewConnection(func() (*godbus.Conn, error) { return dial(ep) })
		if err == nil {
			d.conn = c
			return c, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", ep.Address, err))
	}
	return nil, fmt.Errorf("connect to systemd over D-Bus: %s (is systemd PID 1 and dbus running?)", strings.Join(errs, "; "))
}

// dial opens and authenticates one connection. Its lifetime is not tied
// to a call's context (godbus closes a connection when its context ends).
func dial(ep Endpoint) (*godbus.Conn, error) {
	c, err := godbus.Dial(ep.Address)
	if err != nil {
		return nil, err
	}
	if err := c.Auth([]godbus.Auth{godbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		c.Close()
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if !ep.Direct {
		if err := c.Hello(); err != nil {
			c.Close()
			return nil, fmt.Errorf("hello: %w", err)
		}
	}
	return c, nil
}

// forget drops a connection that died, so the next call reconnects.
func (d *DBus) forget(c *sddbus.Conn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == c && !c.Connected() {
		c.Close()
		d.conn = nil
	}
}

func (d *DBus) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.o.CallTimeout)
}

// TryRestart asks systemd to try-restart unit ("replace" mode) and waits up
// to JobWait for the job's result: "done" is success, any other result
// (failed, timeout, canceled, dependency) an error naming the unit.
func (d *DBus) TryRestart(ctx context.Context, unit string) error {
	c, err := d.connect()
	if err != nil {
		return err
	}
	cctx, cancel := d.callCtx(ctx)
	defer cancel()
	ch := make(chan string, 1) // buffered: go-systemd's dispatcher never blocks on it
	if _, err := c.TryRestartUnitContext(cctx, unit, "replace", ch); err != nil {
		d.forget(c)
		return fmt.Errorf("try-restart %s over D-Bus: %w", unit, err)
	}
	wait := time.NewTimer(d.o.JobWait)
	defer wait.Stop()
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("try-restart %s: the job ended with result %q (see systemctl status %s and journalctl -u %s)", unit, res, unit, unit)
		}
		return nil
	case <-wait.C:
		// Queued and running: systemd finishes it. Its result is still
		// reported when it comes (the channel is go-systemd's, closed
		// never; its dispatcher sends exactly once per job).
		if late := d.o.LateResult; late != nil {
			go func() {
				select {
				case res := <-ch:
					late(unit, res)
				case <-time.After(15 * time.Minute): // a job systemd never finishes
				}
			}()
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("try-restart %s: %w", unit, ctx.Err())
	}
}

// Reload is `systemctl daemon-reload`.
func (d *DBus) Reload(ctx context.Context) error {
	c, err := d.connect()
	if err != nil {
		return err
	}
	cctx, cancel := d.callCtx(ctx)
	defer cancel()
	if err := c.ReloadContext(cctx); err != nil {
		d.forget(c)
		return fmt.Errorf("systemd daemon-reload over D-Bus: %w", err)
	}
	return nil
}

// ActiveState reads the unit's ActiveState property.
func (d *DBus) ActiveState(ctx context.Context, unit string) (string, error) {
	v, err := d.property(ctx, unit, "ActiveState")
	if err != nil {
		return "", err
	}
	s, ok := v.Value().(string)
	if !ok {
		return "", fmt.Errorf("read ActiveState of %s over D-Bus: unexpected value %s", unit, v.String())
	}
	return s, nil
}

// StartedAt reads the unit's InactiveExitTimestamp (microseconds since
// the epoch; 0 when the unit never started).
func (d *DBus) StartedAt(ctx context.Context, unit string) (time.Time, error) {
	v, err := d.property(ctx, unit, "InactiveExitTimestamp")
	if err != nil {
		return time.Time{}, err
	}
	us, ok := v.Value().(uint64)
	if !ok {
		return time.Time{}, fmt.Errorf("read InactiveExitTimestamp of %s over D-Bus: unexpected value %s", unit, v.String())
	}
	if us == 0 {
		return time.Time{}, nil
	}
	return time.UnixMicro(int64(us)), nil
}

func (d *DBus) property(ctx context.Context, unit, name string) (godbus.Variant, error) {
	c, err := d.connect()
	if err != nil {
		return godbus.Variant{}, err
	}
	cctx, cancel := d.callCtx(ctx)
	defer cancel()
	p, err := c.GetUnitPropertyContext(cctx, unit, name)
	if err != nil {
		d.forget(c)
		return godbus.Variant{}, fmt.Errorf("read %s of %s over D-Bus: %w", name, unit, err)
	}
	return p.Value, nil
}

var _ Units = (*DBus)(nil)
