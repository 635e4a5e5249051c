package daemon

import (
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

func repairOf(item string) finding.Change { return finding.Change{Item: item, Action: "inserted rule"} }
func dupOf(item string) finding.Change {
	return finding.Change{Item: item, Action: "deleted duplicate", Duplicate: true}
}

func TestFights(t *testing.T) {
	f := newFights()
	t0 := time.Unix(1000, 0)
	// Four repairs in a minute are no fight.
	for i := 0; i < 4; i++ {
		if st := f.pass(t0.Add(time.Duration(i)*time.Second), []finding.Change{repairOf("ecs_config.X")}); len(st) != 0 {
			t.Fatalf("fight after %d repairs", i+1)
		}
	}
	if f.delay("ecs_config.X") != 0 || f.holding(t0.Add(4*time.Second)) != nil {
		t.Fatalf("delay without fight = %v", f.delay("ecs_config.X"))
	}
	// The fifth starts the fight, exactly once.
	st := f.pass(t0.Add(5*time.Second), []finding.Change{repairOf("ecs_config.X")})
	if len(st) != 1 || st[0].item != "ecs_config.X" || st[0].flips != 5 {
		t.Fatalf("fifth repair: %+v", st)
	}
	if st := f.pass(t0.Add(6*time.Second), []finding.Change{repairOf("ecs_config.X")}); len(st) != 0 {
		t.Fatal("fight reported twice")
	}
	// Delay doubles with each further repair and is capped.
	d1 := f.delay("ecs_config.X")
	f.pass(t0.Add(7*time.Second), []finding.Change{repairOf("ecs_config.X")})
	if d2 := f.delay("ecs_config.X"); d2 != 2*d1 {
		t.Fatalf("delay did not double: %v -> %v", d1, d2)
	}
	for i := 0; i < 30; i++ {
		f.pass(t0.Add(time.Duration(8+i)*time.Second), []finding.Change{repairOf("ecs_config.X")})
	}
	if f.delay("ecs_config.X") != f.maxDelay {
		t.Fatalf("delay not capped: %v", f.delay("ecs_config.X"))
	}
	// The item waits; no other item does.
	h := f.holding(t0.Add(40 * time.Second))
	if _, ok := h["ecs_config.X"]; !ok || len(h) != 1 {
		t.Fatalf("holding = %v, want only ecs_config.X", h)
	}
	if st := f.pass(t0.Add(40*time.Second), []finding.Change{repairOf("sysctl.route_localnet")}); len(st) != 0 {
		t.Fatal("unrelated item in fight")
	}
	if got := f.ended(t0.Add(50 * time.Second)); len(got) != 0 {
		t.Fatalf("ended too early: %v", got)
	}
	if got := f.ended(t0.Add(time.Hour)); len(got) != 1 || got[0] != "ecs_config.X" {
		t.Fatalf("ended = %v", got)
	}
	if len(f.active) > 0 || f.delay("ecs_config.X") != 0 {
		t.Fatal("still in fight after it ended")
	}
	// Repairs spread over more than the window never make a fight.
	g := newFights()
	for i := 0; i < 20; i++ {
		if st := g.pass(t0.Add(time.Duration(i)*20*time.Second), []finding.Change{repairOf("x")}); len(st) != 0 {
			t.Fatalf("slow repairs made a fight at %d", i)
		}
	}
}

// A security item's own fight backs off to at most one second.
func TestSecurityItemBacksOffOneSecondAtMost(t *testing.T) {
	for _, item := range []string{"network.localhost_guard", "sysctl.route_localnet", "network.credentials_redirect", "network.credentials_input", "network.credentials_route"} {
		f := newFights()
		t0 := time.Unix(1000, 0)
		for i := 0; i < 100; i++ {
			f.pass(t0.Add(time.Duration(i)*time.Second), []finding.Change{repairOf(item)})
		}
		if len(f.active) == 0 {
			t.Fatalf("%s: no fight after 100 repairs", item)
		}
		if d := f.delay(item); d <= 0 || d > time.Second {
			t.Fatalf("%s: delay %v, want (0, 1s]", item, d)
		}
	}
	if d := newFights().maxDelayOf("network.introspection_block"); d != 5*time.Minute {
		t.Fatalf("introspection_block max delay %v", d)
	}
}

// One pass that re-adds the four introspection rules counts once.
func TestPassCountsOncePerItem(t *testing.T) {
	f := newFights()
	t0 := time.Unix(1000, 0)
	four := []finding.Change{repairOf("network.introspection_block"), repairOf("network.introspection_block"),
		repairOf("network.introspection_block"), repairOf("network.introspection_block")}
	for i := 0; i < 4; i++ {
		if st := f.pass(t0.Add(time.Duration(i)*time.Second), four); len(st) != 0 {
			t.Fatalf("fight after %d passes of 4 rules", i+1)
		}
	}
	if st := f.pass(t0.Add(5*time.Second), four); len(st) != 1 || st[0].flips != 5 {
		t.Fatalf("fifth pass: %+v", st)
	}
}

// ecsInitRestart is one `systemctl restart ecs` as the daemon's passes see
// it: post-stop resets route_localnet (and the IPv6-only route) and
// deletes one copy of each rule, which the daemon re-adds (maybe in two
// passes); pre-start adds an unchecked copy of each, which the daemon
// removes (maybe in two passes).
func ecsInitRestart(f *fights, at time.Time, split bool) []startedFight {
	var out []startedFight
	readd := []finding.Change{repairOf("sysctl.route_localnet"), repairOf("network.credentials_dnat"), repairOf("network.localhost_guard"),
		repairOf("network.introspection_block"), repairOf("network.introspection_block")}
	readd2 := []finding.Change{repairOf("network.introspection_block"), repairOf("network.introspection_block"), repairOf("network.credentials_redirect")}
	dups := []finding.Change{dupOf("network.credentials_dnat"), dupOf("network.localhost_guard"), dupOf("network.introspection_block"), dupOf("network.introspection_block")}
	dups2 := []finding.Change{dupOf("network.introspection_block"), dupOf("network.introspection_block"), dupOf("network.credentials_redirect")}
	if split {
		out = append(out, f.pass(at, readd)...)
		out = append(out, f.pass(at.Add(50*time.Millisecond), readd2)...)
		out = append(out, f.pass(at.Add(time.Second), dups)...)
		out = append(out, f.pass(at.Add(time.Second+50*time.Millisecond), dups2)...)
	} else {
		out = append(out, f.pass(at, append(readd, readd2...))...)
		out = append(out, f.pass(at.Add(time.Second), append(dups, dups2...))...)
	}
	return out
}

// Contract (issues 15, 16): ten agent restarts within a minute are no
// fight and hold nothing back, however the passes split them; another
// tool's deletion in between is still repaired at once.
func TestEcsInitCycleIsNoFight(t *testing.T) {
	for _, split := range []bool{false, true} {
		f := newFights()
		t0 := time.Unix(1000, 0)
		for i := 0; i < 10; i++ {
			at := t0.Add(time.Duration(i) * 6 * time.Second)
			if st := ecsInitRestart(f, at, split); len(st) != 0 {
				t.Fatalf("split=%v: restart %d started a fight: %+v", split, i+1, st)
			}
			if h := f.holding(at.Add(2 * time.Second)); len(h) != 0 {
				t.Fatalf("split=%v: restart %d: holding %v", split, i+1, h)
			}
			// Another tool deletes the REDIRECT rule between restarts.
			if i%3 == 1 {
				f.pass(at.Add(3*time.Second), []finding.Change{repairOf("network.credentials_redirect")})
			}
		}
		if len(f.active) > 0 {
			t.Fatalf("split=%v: in a fight after ten restarts", split)
		}
	}
}

// A tool that deletes a rule again and again, with no duplicates in
// between, is a fight; ecs-init's restarts cannot bank credits for it.
func TestDeleterIsAFightEvenAfterRestarts(t *testing.T) {
	f := newFights()
	t0 := time.Unix(1000, 0)
	for i := 0; i < 10; i++ { // many pre-starts' duplicates: credits stay capped
		f.pass(t0.Add(time.Duration(i)*time.Second), []finding.Change{dupOf("network.credentials_redirect")})
	}
	var started []startedFight
	for i := 0; i < ruleCreditCap+5; i++ {
		started = append(started, f.pass(t0.Add(time.Duration(20+i)*time.Second), []finding.Change{repairOf("network.credentials_redirect")})...)
	}
	if len(started) != 1 || started[0].item != "network.credentials_redirect" {
		t.Fatalf("fights started: %+v, want one for network.credentials_redirect", started)
	}
	// Removing duplicates alone never is a fight.
	g := newFights()
	for i := 0; i < 50; i++ {
		if st := g.pass(t0.Add(time.Duration(i)*time.Second), []finding.Change{dupOf("network.credentials_dnat")}); len(st) != 0 {
			t.Fatal("duplicates made a fight")
		}
	}
}
