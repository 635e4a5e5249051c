package main

import (
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// fightResult is issue 16's case: another tool fights over ecs.config
// (writes ECS_ENABLE_TASK_IAM_ROLE=false every fightEvery) while a
// credential rule drifts. The rule is a security item: it must be repaired
// as fast as without a fight, whatever ecs.config's back-off.
type fightResult struct {
	b       backend
	rules   sample // REDIRECT deleted -> back, during the fight
	failed  int
	daemons int
	fights  int           // daemons that logged the ecs.config fight
	writes  int64         // the fighter's writes
	window  time.Duration // measured windows, summed
	cpu     time.Duration // daemon + children over the windows
}

// fightEvery is the fighter's period (the reliability test's too).
const fightEvery = 100 * time.Millisecond

func fightDrift(bin, root string, b backend, busAddr string, trials int) (*fightResult, error) {
	h, err := newOursHost(bin, root, b, "fight-"+b.Name, busAddr)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	r := &fightResult{b: b}
	for len(r.rules)+r.failed < trials {
		d, err := h.startDaemon(bin, busAddr)
		if err != nil {
			return nil, err
		}
		r.daemons++
		var writes atomic.Int64
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(fightEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if os.WriteFile(h.ecsConfig, []byte(badConfig), 0o644) == nil {
						writes.Add(1)
					}
				}
			}
		}()
		// The fight starts at the 5th repair within a minute.
		for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if strings.Contains(d.logs.String(), "keeps undoing") {
				r.fights++
				break
			}
		}
		s0, err0 := readProc(d.Pid())
		// fightFree drifts of the rule per daemon: more would make the
		// rule's own history a fight, which is not the case measured.
		for i := 0; i < fightFree && len(r.rules)+r.failed < trials; i++ {
			pause()
			t, err := ruleDrift(h.host, h.p, 30*time.Second, false)
			if err != nil {
				close(stop)
				<-done
				d.Stop()
				return nil, err
			}
			if t.repaired {
				r.rules = append(r.rules, t.lat)
			} else {
				r.failed++
			}
		}
		s1, err1 := readProc(d.Pid())
		close(stop)
		<-done
		r.writes += writes.Load()
		if err0 == nil && err1 == nil {
			r.window += s1.at.Sub(s0.at)
			r.cpu += time.Duration((s1.cpuTicks-s0.cpuTicks)+(s1.childTicks-s0.childTicks)) * time.Second / clkTck
		}
		d.Stop()
	}
	return r, nil
}
