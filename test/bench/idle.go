package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// idleResult is a compliant daemon left alone.
type idleResult struct {
	dur        time.Duration
	s0, s1     procStats
	passes     float64 // reconcile passes in the window
	cpuPercent float64 // own + children, % of one core
}

// settle is how long a fresh daemon is left before a window opens, so that
// its start (first reconcile, first metrics write) is not counted.
const settle = 3 * time.Second

var actionRE = regexp.MustCompile(`"action": ?"([a-z-]+)"`)

func measureIdle(d *daemon, dur time.Duration) (*idleResult, error) {
	time.Sleep(settle)
	m0, err := d.scrape()
	if err != nil {
		return nil, err
	}
	s0, err := readProc(d.Pid())
	if err != nil {
		return nil, err
	}
	time.Sleep(dur)
	s1, err := readProc(d.Pid())
	if err != nil {
		return nil, err
	}
	m1, err := d.scrape()
	if err != nil {
		return nil, err
	}
	r := &idleResult{dur: s1.at.Sub(s0.at), s0: s0, s1: s1, passes: m1.passes - m0.passes}
	ticks := (s1.cpuTicks - s0.cpuTicks) + (s1.childTicks - s0.childTicks)
	r.cpuPercent = float64(ticks) / clkTck / r.dur.Seconds() * 100
	return r, nil
}

// burstResult is 1 000 writes to ecs.config within one second.
type burstResult struct {
	d                   *daemon
	bus                 *fakeSystemd
	h                   *host
	writes              int
	writeDur            time.Duration // how long the writes took
	window              time.Duration // burst start to the end of observation
	repairedAfter       time.Duration // burst end to the file reading right
	cpu                 time.Duration // daemon + children during the window
	passes              float64
	restarts            int            // try-restarts the fake systemd saw within the window
	actions             map[string]int // log lines per action within the window
	restartsLater       int            // try-restarts seen by the end of the whole bench
	laterAfter          time.Duration  // ... that is, this long after the burst
	burstStart, obsDone time.Time
}

// burst starts a daemon with its own fake systemd (so its restarts are
// counted apart), writes ecs.config burstWrites times within a second
// (each write a new ECS_CLUSTER and ECS_ENABLE_TASK_IAM_ROLE=false), and
// watches until the file is right again and restarts had time to happen.
// The daemon is left running: Finish reads its late restarts.
// burstRepairWait is how long the bench waits for ecs.config to read
// right after the burst.
const burstRepairWait = 60 * time.Second

func burst(bin, root string, b backend, writes int) (*burstResult, error) {
	h, err := newHost(root, b, "burst-"+b.Name)
	if err != nil {
		return nil, err
	}
	busDir := filepath.Join(h.dir, "dbus")
	if err := os.MkdirAll(busDir, 0o755); err != nil {
		h.Close()
		return nil, err
	}
	bus, err := startFakeSystemd(busDir)
	if err != nil {
		h.Close()
		return nil, err
	}
	if _, err := apply(bin, h, bus.addr); err != nil { // start compliant
		bus.Close()
		h.Close()
		return nil, err
	}
	d, err := startDaemon(bin, h, bus.addr)
	if err != nil {
		bus.Close()
		h.Close()
		return nil, err
	}
	r := &burstResult{d: d, bus: bus, h: h, writes: writes}
	time.Sleep(settle)
	m0, err := d.scrape()
	if err != nil {
		return r, err
	}
	s0, err := readProc(d.Pid())
	if err != nil {
		return r, err
	}
	logs0 := len(d.logs.String())
	r.burstStart = time.Now()
	step := time.Second / time.Duration(writes)
	for i := 0; i < writes; i++ {
		if wait := time.Until(r.burstStart.Add(time.Duration(i) * step)); wait > 0 {
			time.Sleep(wait)
		}
		body := fmt.Sprintf("ECS_CLUSTER=burst-%d\nECS_ENABLE_TASK_IAM_ROLE=false\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n", i)
		if err := os.WriteFile(h.ecsConfig, []byte(body), 0o644); err != nil {
			return r, err
		}
	}
	end := time.Now()
	r.writeDur = end.Sub(r.burstStart)
	// A burst is a fight (another writer undoes every repair), so the item
	// may be held by its back-off (up to 5 minutes, issue 16) when the
	// writes stop: that is recorded, not an error.
	deadline := end.Add(burstRepairWait)
	r.repairedAfter = -1
	for {
		if fileRight(h.ecsConfig) {
			r.repairedAfter = time.Since(end)
			break
		}
		if time.Now().After(deadline) {
			progress("%s burst: ecs.config still wrong %s after the last write (the item's fight back-off)", b.Name, burstRepairWait)
			break
		}
		time.Sleep(probeEvery)
	}
	// The restart waits 1 s after the request that asks for it; give it 3.
	time.Sleep(3 * time.Second)
	r.obsDone = time.Now()
	s1, err := readProc(d.Pid())
	if err != nil {
		return r, err
	}
	m1, err := d.scrape()
	if err != nil {
		return r, err
	}
	r.window = s1.at.Sub(s0.at)
	r.cpu = time.Duration((s1.cpuTicks-s0.cpuTicks)+(s1.childTicks-s0.childTicks)) * time.Second / clkTck
	r.passes = m1.passes - m0.passes
	r.restarts = bus.Restarts()
	r.actions = map[string]int{}
	for _, x := range actionRE.FindAllStringSubmatch(d.logs.String()[logs0:], -1) {
		r.actions[x[1]]++
	}
	return r, nil
}

// Finish records the restarts seen by now and stops the burst's daemon.
func (r *burstResult) Finish() {
	if r.bus != nil {
		r.restartsLater = r.bus.Restarts()
		r.laterAfter = time.Since(r.burstStart)
	}
	if r.d != nil {
		r.d.Stop()
	}
	if r.bus != nil {
		r.bus.Close()
	}
	if r.h != nil {
		r.h.Close()
	}
}
