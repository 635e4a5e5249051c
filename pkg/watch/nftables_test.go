package watch

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/nfnetlink"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

const credRule = "OUTPUT -d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 51679"

// privateNS fails unless the calling thread is in a network namespace of
// its own: a command run from anywhere else would change this machine.
// (t.Run inside nstest.Run's fn would do exactly that: subtests run on
// other goroutines, outside the namespace.)
func privateNS(t testing.TB) {
	t.Helper()
	self, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil || hostNS == "" || self == hostNS {
		t.Fatalf("refusing to change iptables outside a private network namespace (this thread %s, the test process at start %s)", self, hostNS)
	}
}

// hostNS is the network namespace the test binary started in (read before
// any test unshares a thread).
var hostNS, _ = os.Readlink("/proc/thread-self/ns/net")

// sh runs a shell command in the private namespace.
func sh(t testing.TB, script string) {
	t.Helper()
	privateNS(t)
	nstest.Sh(t, script)
}

func nftEvent(kind string) func(Event) bool {
	return func(ev Event) bool {
		return ev.Source == SourceNftables && strings.Contains(ev.Name, kind)
	}
}

// nftSentinel makes a change only this test makes (a new chain) and
// returns every event before its own: the kernel delivers notifications in
// order, so an earlier action's events have arrived by then.
func nftSentinel(t *testing.T, ch <-chan Event, chain string) []Event {
	t.Helper()
	sh(t, "iptables-nft -t filter -N "+chain)
	seen := waitFor(t, ch, "sentinel chain "+chain, nftEvent("newchain"))
	return seen[:len(seen)-1]
}

// TestNftablesEvents runs its steps in sequence on the namespace's thread
// (no t.Run: subtests would run outside the namespace).
func TestNftablesEvents(t *testing.T) {
	nstest.Require(t, "iptables-nft", "iptables-nft-save", "iptables-nft-restore")
	nstest.Run(t, func() {
		// Tables exist (and nf_tables is loaded) before we subscribe.
		sh(t, "iptables-nft -t nat -A "+credRule)
		sh(t, "iptables-nft -t filter -A INPUT -i lo -j ACCEPT")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := make(chan Event, 64)
		if err := Nftables(ctx, ch); err != nil {
			t.Error(err)
			return
		}

		// Reading the ruleset sends nothing (no feedback from checks).
		sh(t, "iptables-nft-save >/dev/null; iptables-nft -t nat -S >/dev/null; iptables-nft -t nat -L -n >/dev/null; iptables-nft -t nat -C "+credRule)
		if seen := nftSentinel(t, ch, "SENTINEL1"); len(seen) != 0 {
			t.Errorf("reads sent %v: the daemon's own checks would feed back", seen)
		}

		// A rule deleted with -D.
		sh(t, "iptables-nft -t nat -D "+credRule)
		waitFor(t, ch, "iptables-nft -D", nftEvent("delrule"))

		// A chain flushed with -F.
		sh(t, "iptables-nft -t nat -A "+credRule)
		waitFor(t, ch, "re-add", nftEvent("newrule"))
		sh(t, "iptables-nft -t nat -F OUTPUT")
		waitFor(t, ch, "iptables-nft -F", nftEvent("delrule"))

		// Another tool restoring an old ruleset.
		sh(t, "iptables-nft -t nat -A "+credRule)
		waitFor(t, ch, "re-add", nftEvent("newrule"))
		sh(t, "printf '*nat\\n:OUTPUT ACCEPT [0:0]\\nCOMMIT\\n' | iptables-nft-restore")
		waitFor(t, ch, "iptables-nft-restore", nftEvent("newgen"))
		if out := nstest.Sh(t, "iptables-nft -t nat -S OUTPUT"); strings.Contains(out, "169.254.170.2") {
			t.Errorf("restore did not remove the rule: %s", out)
		}

		// Changes in another network namespace are not ours.
		nstest.Run(t, func() {
			sh(t, "iptables-nft -t nat -A "+credRule+" && iptables-nft -t nat -D "+credRule)
		})
		if seen := nftSentinel(t, ch, "SENTINEL2"); len(seen) != 0 {
			t.Errorf("a change in another network namespace sent %v", seen)
		}

		// Cancel stops the watcher: later changes send nothing.
		cancel()
		time.Sleep(50 * time.Millisecond) // let the close land
		for len(ch) > 0 {
			<-ch
		}
		sh(t, "iptables-nft -t filter -N AFTERCANCEL")
		select {
		case ev := <-ch:
			t.Errorf("event after cancel: %v", ev)
		case <-time.After(200 * time.Millisecond):
		}
	})
}

// nftMessageNames lists the distinct nf_tables message types in one netlink
// datagram, in order ("delrule,newgen"), as readNftables names a
// transaction; "" when there is none.
func nftMessageNames(b []byte) string {
	var x nftTxn
	nfnetlink.Messages(b, func(m nfnetlink.Message) {
		if m.Subsys == unix.NFNL_SUBSYS_NFTABLES {
			x.add(nftMsgName(uint16(m.Type)))
		}
	})
	return strings.Join(x.names, ",")
}

func TestNftMessageNames(t *testing.T) {
	msg := func(typ uint16, payload int) []byte {
		l := 16 + payload
		b := make([]byte, (l+3)&^3)
		b[0], b[1] = byte(l), byte(l>>8)
		b[4], b[5] = byte(typ), byte(typ>>8)
		return b
	}
	const nft = 10 << 8 // NFNL_SUBSYS_NFTABLES
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"one rule deleted", msg(nft|8, 5), "delrule"},
		{"batch", append(append(msg(nft|8, 3), msg(nft|8, 0)...), msg(nft|15, 4)...), "delrule,newgen"},
		{"other subsystem", msg(1<<8|2, 0), ""},
		{"unknown type", msg(nft|99, 0), "msg99"},
		{"truncated", msg(nft|8, 10)[:12], ""},
		{"bad length", []byte{200, 0, 0, 0, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ""},
		{"empty", nil, ""},
	} {
		if got := nftMessageNames(tc.in); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// BenchmarkNftablesDeleteToEvent measures how long after `iptables-nft -D`
// starts the event arrives (ms-to-event), next to how long the command
// itself takes to exit (ms-to-exit): the event comes from the kernel's
// commit, inside the command's run.
func BenchmarkNftablesDeleteToEvent(b *testing.B) {
	nstest.Require(b, "iptables-nft")
	nstest.Run(b, func() {
		sh(b, "iptables-nft -t nat -A "+credRule)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := make(chan Event, 64)
		if err := Nftables(ctx, ch); err != nil {
			b.Error(err)
			return
		}
		sh(b, "iptables-nft -t nat -D "+credRule)
		var toEvent, toExit time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			sh(b, "iptables-nft -t nat -A "+credRule)
			drainUntil(ch, "newrule")
			for len(ch) > 0 {
				<-ch
			}
			b.StartTimer()
			start := time.Now()
			privateNS(b)
			cmd := exec.Command("iptables-nft", append([]string{"-t", "nat", "-D"}, strings.Fields(credRule)...)...)
			if err := cmd.Start(); err != nil {
				b.Error(err)
				return
			}
			drainUntil(ch, "delrule")
			toEvent += time.Since(start)
			if err := cmd.Wait(); err != nil {
				b.Error(err)
				return
			}
			toExit += time.Since(start)
		}
		b.ReportMetric(float64(toEvent.Microseconds())/1000/float64(b.N), "ms-to-event")
		b.ReportMetric(float64(toExit.Microseconds())/1000/float64(b.N), "ms-to-exit")
	})
}

func drainUntil(ch <-chan Event, kind string) {
	timeout := time.After(guard)
	for {
		select {
		case ev := <-ch:
			if strings.Contains(ev.Name, kind) {
				return
			}
		case <-timeout:
			return
		}
	}
}

// Every committed transaction is one Settled event naming the process
// that committed it (and, for a short-lived tool, who ran it).
func TestNftablesCulprit(t *testing.T) {
	nstest.Require(t, "iptables-nft")
	nstest.Run(t, func() {
		sh(t, "iptables-nft -t nat -A "+credRule)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := make(chan Event, 64)
		if err := Nftables(ctx, ch); err != nil {
			t.Error(err)
			return
		}
		privateNS(t)
		cmd := exec.Command("iptables-nft", append([]string{"-t", "nat", "-D"}, strings.Fields(credRule)...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("iptables-nft -D: %v: %s", err, out)
			return
		}
		seen := waitFor(t, ch, "iptables-nft -D", nftEvent("delrule"))
		ev := seen[len(seen)-1]
		if !ev.Settled || !strings.HasSuffix(ev.Name, "newgen") {
			t.Errorf("%+v: want a Settled event ending with newgen (a committed transaction)", ev)
		}
		pid := cmd.Process.Pid
		if ev.PID != pid || ev.PPID != os.Getpid() {
			t.Errorf("%+v: want PID %d (the command) and PPID %d (this test)", ev, pid, os.Getpid())
		}
		want := fmt.Sprintf("(pid %d) run by ", pid)
		if !strings.HasPrefix(ev.Culprit, "iptables") || !strings.Contains(ev.Culprit, want) {
			t.Errorf("culprit %q, want iptables… %s…", ev.Culprit, want)
		}
	})
}

func TestGenProcAndCulprit(t *testing.T) {
	attr := func(typ uint16, d []byte) []byte {
		b := make([]byte, (4+len(d)+3)&^3)
		binary.NativeEndian.PutUint16(b, uint16(4+len(d)))
		binary.NativeEndian.PutUint16(b[2:], typ)
		copy(b[4:], d)
		return b
	}
	nfgen := []byte{0, 0, 0, 0}
	join := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		want    string
	}{
		{"pid and name", join(nfgen, attr(1, []byte{0, 0, 0, 7}), attr(2, []byte{0, 0, 3, 44}), attr(3, []byte("firewalld\x00"))), "firewalld (pid 812)"},
		{"old kernel: generation only", join(nfgen, attr(1, []byte{0, 0, 0, 7})), ""},
		{"name without pid", join(nfgen, attr(3, []byte("nft\x00"))), "nft"},
		{"pid without name", join(nfgen, attr(2, []byte{0, 0, 0, 9})), "pid 9"},
		{"control characters quoted", join(nfgen, attr(2, []byte{0, 0, 0, 9}), attr(3, []byte("a\x1b[2Jb\x00"))), `"a\x1b[2Jb" (pid 9)`},
		{"truncated attribute", join(nfgen, attr(3, []byte("firewalld\x00"))[:6]), ""},
		{"short", []byte{0, 0}, ""},
	} {
		g := nfnetlink.ParseGen(tc.payload[min(4, len(tc.payload)):])
		if got := culprit(g.PID, g.Comm); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func FuzzGenProc(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 8, 0, 2, 0, 0, 0, 3, 44})
	f.Fuzz(func(t *testing.T, b []byte) {
		g := nfnetlink.ParseGen(b)
		if c := culprit(g.PID, g.Comm); strings.ContainsAny(c, "\x00\x1b\n") {
			t.Errorf("culprit %q holds control characters", c)
		}
	})
}

// One event per transaction, when its NEWGEN arrives; several
// transactions in one read give several events.
func TestNftTxn(t *testing.T) {
	msg := func(typ uint16, payload []byte) []byte {
		l := 16 + len(payload)
		b := make([]byte, (l+3)&^3)
		binary.NativeEndian.PutUint32(b, uint32(l))
		binary.NativeEndian.PutUint16(b[4:], 10<<8|typ)
		copy(b[16:], payload)
		return b
	}
	gen := func(pid byte) []byte {
		return msg(15, []byte{0, 0, 0, 0, 8, 0, 2, 0, 0, 0, 0, pid})
	}
	parse := func(b []byte) []nfnetlink.Message {
		var ms []nfnetlink.Message
		nfnetlink.Messages(b, func(m nfnetlink.Message) { ms = append(ms, m) })
		return ms
	}
	var x nftTxn
	if evs := x.feed(parse(append(msg(8, nil), msg(6, nil)...))); len(evs) != 0 {
		t.Fatalf("events before NEWGEN: %v", evs)
	}
	evs := x.feed(parse(append(gen(5), append(msg(3, nil), gen(6)...)...)))
	if len(evs) != 2 {
		t.Fatalf("%v: want two transactions", evs)
	}
	if evs[0].Name != "delrule,newrule,newgen" || evs[0].PID != 5 || !evs[0].Settled {
		t.Errorf("first: %+v", evs[0])
	}
	if evs[1].Name != "newchain,newgen" || evs[1].PID != 6 {
		t.Errorf("second: %+v", evs[1])
	}
	if x.pending() {
		t.Error("still pending after NEWGEN")
	}
}

// The kernel names the committing thread; a transaction committed by any
// thread of this process is this process's (the daemon ignores its own
// transactions by it).
func TestNftablesCulpritIsTheProcessNotTheThread(t *testing.T) {
	nstest.Require(t, "iptables-nft")
	nstest.Run(t, func() {
		sh(t, "iptables-nft -t nat -A "+credRule)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := make(chan Event, 64)
		if err := Nftables(ctx, ch); err != nil {
			t.Error(err)
			return
		}
		c, err := nfnetlink.Dial()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		gen, err := c.GenID()
		if err != nil {
			t.Error(err)
			return
		}
		// A new chain, committed by this (locked, not main) thread.
		if err := c.Batch(gen, []nfnetlink.Request{{Subsys: 10, Type: 3, Flags: 0x400 /* NLM_F_CREATE */, Family: 2,
			Attrs: []nfnetlink.Attr{nfnetlink.String(1, "nat"), nfnetlink.String(3, "OURS")}}}); err != nil {
			t.Error(err)
			return
		}
		seen := waitFor(t, ch, "our own transaction", nftEvent("newchain"))
		if ev := seen[len(seen)-1]; ev.PID != os.Getpid() {
			t.Errorf("%+v: PID %d, want this process %d (the thread group, not the thread)", ev, ev.PID, os.Getpid())
		}
	})
}

func TestTgid(t *testing.T) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	others := 0
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		if tid != os.Getpid() {
			others++
		}
		if got := tgid(tid); got != os.Getpid() {
			t.Errorf("tgid(%d) = %d, want this process %d", tid, got, os.Getpid())
		}
	}
	if others == 0 {
		t.Fatal("the test process has no thread but its main one (the Go runtime always starts some)")
	}
	if got := tgid(-1); got != -1 {
		t.Errorf("tgid(-1) = %d", got)
	}
}
