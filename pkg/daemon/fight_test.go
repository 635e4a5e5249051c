package daemon

import (
	"testing"
	"time"
)

func TestFights(t *testing.T) {
	f := newFights()
	t0 := time.Unix(1000, 0)
	// Four repairs in a minute are no fight.
	for i := 0; i < 4; i++ {
		if started, _ := f.record("ecs_config.X", t0.Add(time.Duration(i)*time.Second)); started {
			t.Fatalf("fight after %d repairs", i+1)
		}
	}
	if f.delay() != 0 {
		t.Fatalf("delay without fight = %v", f.delay())
	}
	// The fifth starts the fight, exactly once.
	started, flips := f.record("ecs_config.X", t0.Add(5*time.Second))
	if !started || flips != 5 {
		t.Fatalf("fifth repair: started=%v flips=%d", started, flips)
	}
	if started, _ := f.record("ecs_config.X", t0.Add(6*time.Second)); started {
		t.Fatal("fight reported twice")
	}
	// Delay doubles with each further repair and is capped.
	d1 := f.delay()
	f.record("ecs_config.X", t0.Add(7*time.Second))
	if d2 := f.delay(); d2 != 2*d1 {
		t.Fatalf("delay did not double: %v -> %v", d1, d2)
	}
	for i := 0; i < 30; i++ {
		f.record("ecs_config.X", t0.Add(time.Duration(8+i)*time.Second))
	}
	if f.delay() != f.maxDelay {
		t.Fatalf("delay not capped: %v", f.delay())
	}
	// Other items are unaffected; the fight ends after a quiet period.
	if started, _ := f.record("sysctl.route_localnet", t0.Add(40*time.Second)); started {
		t.Fatal("unrelated item in fight")
	}
	if got := f.ended(t0.Add(50 * time.Second)); len(got) != 0 {
		t.Fatalf("ended too early: %v", got)
	}
	if got := f.ended(t0.Add(time.Hour)); len(got) != 1 || got[0] != "ecs_config.X" {
		t.Fatalf("ended = %v", got)
	}
	if f.inFight() || f.delay() != 0 {
		t.Fatal("still in fight after it ended")
	}
	// Repairs spread over more than the window never make a fight.
	g := newFights()
	for i := 0; i < 20; i++ {
		if started, _ := g.record("x", t0.Add(time.Duration(i)*20*time.Second)); started {
			t.Fatalf("slow repairs made a fight at %d", i)
		}
	}
}
