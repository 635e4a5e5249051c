package daemon

import (
	"sort"
	"strings"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// fights notices another tool undoing a repair again and again, per item.
// An item repaired in threshold passes within window is in a fight: the
// daemon keeps holding the good state but waits longer and longer between
// repairs of that item only (every pass still observes everything), and
// says so once. A fight ends when the item needed no repair for quiet.
// Pure logic: time comes from the caller.
//
// What counts (docs/ecs-init.md, "Converging with ecs-init"):
//
//   - A pass counts once per item, however many rules of it were repaired
//     (network.introspection_block covers up to four).
//   - Removing duplicates never counts: the rule was there, nothing of
//     ours was undone (ecs-init's pre-start adds with -A/-I unchecked).
//   - ecs-init's post-stop deletes one copy of each of its rules and writes
//     conf.default.route_localnet into conf.all; its pre-start then adds a
//     copy of each. One agent restart is thus one duplicate removed and
//     one re-add per rule. Every duplicate of an ecs-init rule removed
//     earns its item one credit, and every pass that removed one earns
//     the route_localnet and credentials-route items one; a later repair
//     of the item spends a credit instead of counting. Credits are capped
//     (a restart's worth), so no tool can bank them.
//
// Back-off: security and credential items (the localhost guard,
// route_localnet, network.credentials_*) wait at most securityMaxDelay
// between repairs, whatever is fighting; the others double from one second
// up to maxDelay.
type fights struct {
	window           time.Duration
	threshold        int
	quiet            time.Duration
	maxDelay         time.Duration
	securityMaxDelay time.Duration

	repairs map[string][]time.Time // recent counted repairs per item (within window)
	active  map[string]*fight
	credits map[string]int
}

type fight struct {
	started time.Time
	last    time.Time
	count   int // counted repairs since the fight started (threshold at the start)
}

// Items of ecs-init's cycle (the ids of pkg/netfilter and pkg/sysctl;
// the daemon does not import the side-effect packages).
var (
	// ecsInitRules: ecs-init adds an unchecked copy of these at pre-start
	// and deletes one at post-stop.
	ecsInitRules = map[string]bool{
		"network.credentials_dnat":     true,
		"network.credentials_redirect": true,
		"network.localhost_guard":      true,
		"network.introspection_block":  true,
	}
	// ecsInitResets: post-stop resets these without adding anything at
	// pre-start that we would see as a duplicate.
	ecsInitResets = []string{"sysctl.route_localnet", "network.credentials_route"}
)

const (
	ruleCreditCap  = 4 // introspection_block: IPv4 and IPv6 DROP and ACCEPT
	resetCreditCap = 2 // pre-start's duplicates may be removed in two passes
)

// security reports whether item is one whose absence costs tasks their
// credentials or opens 127.0.0.1 to the network: it never waits long.
func security(item string) bool {
	return item == "network.localhost_guard" || item == "sysctl.route_localnet" ||
		strings.HasPrefix(item, "network.credentials_")
}

func newFights() *fights {
	return &fights{
		window:           time.Minute,
		threshold:        5,
		quiet:            2 * time.Minute,
		maxDelay:         5 * time.Minute,
		securityMaxDelay: time.Second,
		repairs:          map[string][]time.Time{},
		active:           map[string]*fight{},
		credits:          map[string]int{},
	}
}

// startedFight is a fight that a pass started (the caller logs it once).
type startedFight struct {
	item   string
	flips  int
	change finding.Change // the item's first change in the pass
}

// pass notes the changes of one repair pass made at now and returns the
// fights it started.
func (f *fights) pass(now time.Time, cs []finding.Change) []startedFight {
	type tally struct {
		dups, repairs int
		first         finding.Change
	}
	by := map[string]*tally{}
	var order []string
	for _, c := range cs {
		t := by[c.Item]
		if t == nil {
			t = &tally{first: c}
			by[c.Item] = t
			order = append(order, c.Item)
		}
		if c.Duplicate {
			t.dups++
		} else {
			t.repairs++
		}
	}
	// Earn first: a pass that lagged behind a whole restart sees the
	// duplicate of its pre-start and the gap of its post-stop together.
	ecsInitStarted := false
	for _, item := range order {
		if t := by[item]; t.dups > 0 && ecsInitRules[item] {
			ecsInitStarted = true
			f.credits[item] = min(f.credits[item]+t.dups, ruleCreditCap)
		}
	}
	if ecsInitStarted {
		for _, item := range ecsInitResets {
			f.credits[item] = min(f.credits[item]+1, resetCreditCap)
		}
	}
	var out []startedFight
	for _, item := range order {
		t := by[item]
		uncredited := t.repairs
		if c := f.credits[item]; c > 0 && uncredited > 0 {
			spend := min(c, uncredited)
			f.credits[item] -= spend
			uncredited -= spend
		}
		if uncredited == 0 {
			continue
		}
		if started, flips := f.record(item, now); started {
			out = append(out, startedFight{item: item, flips: flips, change: t.first})
		}
	}
	return out
}

// record counts one repair pass of item. started is true when this repair
// turns the item's history into a fight; flips is how often it was
// repaired within the window.
func (f *fights) record(item string, now time.Time) (started bool, flips int) {
	if a, ok := f.active[item]; ok {
		a.count++
		a.last = now
		return false, a.count
	}
	h := f.repairs[item]
	kept := h[:0]
	for _, t := range h {
		if now.Sub(t) < f.window {
			kept = append(kept, t)
		}
	}
	kept = append(kept, now)
	f.repairs[item] = kept
	if len(kept) >= f.threshold {
		f.active[item] = &fight{started: now, last: now, count: len(kept)}
		delete(f.repairs, item)
		return true, len(kept)
	}
	return false, len(kept)
}

// delay is how long item waits after its last repair before the next
// one: zero outside a fight; in a fight it doubles with every repair,
// from securityMaxDelay/4 up to securityMaxDelay for security items and
// from one second up to maxDelay for the others.
func (f *fights) delay(item string) time.Duration {
	a, ok := f.active[item]
	if !ok {
		return 0
	}
	d, limit := time.Second, f.maxDelay
	if security(item) {
		d, limit = f.securityMaxDelay/4, f.securityMaxDelay
	}
	for i := f.threshold; i < a.count && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// holding returns the items that must not be repaired at now, each with
// the time it may be repaired again.
func (f *fights) holding(now time.Time) map[string]time.Time {
	var out map[string]time.Time
	for item, a := range f.active {
		if until := a.last.Add(f.delay(item)); now.Before(until) {
			if out == nil {
				out = map[string]time.Time{}
			}
			out[item] = until
		}
	}
	return out
}

// ended returns the items whose fight is over: no repair for quiet (or for
// twice the item's current delay, whichever is longer).
func (f *fights) ended(now time.Time) []string {
	var out []string
	for item, a := range f.active {
		q := max(f.quiet, 2*f.delay(item))
		if now.Sub(a.last) >= q {
			out = append(out, item)
			delete(f.active, item)
		}
	}
	sort.Strings(out)
	return out
}

// maxDelayOf is the longest item waits between repairs in a fight.
func (f *fights) maxDelayOf(item string) time.Duration {
	if security(item) {
		return f.securityMaxDelay
	}
	return f.maxDelay
}
