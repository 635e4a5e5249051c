package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/test/nspawn"
)

// host is the booted container seen as an ECS instance.
type host struct {
	*nspawn.Container
}

// prop is one property of a unit (systemctl show -p NAME --value).
func (h host) prop(t testing.TB, unit, name string) string {
	t.Helper()
	return strings.TrimSpace(h.MustExec(t, "systemctl", "show", "-p", name, "--value", unit))
}

func (h host) intProp(t testing.TB, unit, name string) int64 {
	t.Helper()
	v := h.prop(t, unit, name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s %s = %q, not a number", unit, name, v)
	}
	return n
}

// waitFor polls cond every 200ms until it holds, or fails the test after
// timeout with what was last seen and the daemon's journal.
func (h host) waitFor(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; last seen: %s\n--- journal (ecs-remediator, ecs):\n%s", timeout, what, detail,
				h.Journal("-b", "-u", "ecs-remediator", "-u", "ecs", "-n", "80"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitActive waits for a unit to be active (and, for the daemon, READY).
func (h host) waitActive(t testing.TB, unit string) {
	t.Helper()
	h.waitFor(t, unit+" to be active", 30*time.Second, func() (bool, string) {
		s := h.prop(t, unit, "ActiveState")
		return s == "active", "ActiveState=" + s
	})
}

// entry is one journal record with its fields as text.
type entry map[string]string

// journal returns the records journalctl -o json prints for args.
func (h host) journal(t testing.TB, args ...string) []entry {
	t.Helper()
	out := h.MustExec(t, append([]string{"journalctl", "--no-pager", "-o", "json"}, args...)...)
	var es []entry
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			t.Fatalf("journalctl -o json printed a line that is not JSON: %v: %q", err, line)
		}
		e := entry{}
		for k, v := range raw {
			e[k] = jsonText(v)
		}
		es = append(es, e)
	}
	return es
}

func jsonText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any: // a binary field (bytes) or a field given more than once
		var b []byte
		var parts []string
		for _, e := range x {
			switch y := e.(type) {
			case float64:
				b = append(b, byte(y))
			default:
				parts = append(parts, fmt.Sprint(y))
			}
		}
		if len(parts) > 0 {
			return strings.Join(parts, "\n")
		}
		return string(b)
	default:
		return fmt.Sprint(v)
	}
}

// cursor is the journal's current end, for "what was logged after this".
func (h host) cursor(t testing.TB) string {
	t.Helper()
	es := h.journal(t, "-n", "1")
	if len(es) == 0 {
		t.Fatal("the journal is empty")
	}
	return es[0]["__CURSOR"]
}

// after returns every record logged after cursor. (journalctl v252 prints
// nothing for --after-cursor combined with a match such as -u, so matching
// is done here.)
func (h host) after(t testing.TB, cursor string) []entry {
	t.Helper()
	return h.journal(t, "--after-cursor", cursor)
}

// ofUnit keeps the records a unit's processes logged.
func ofUnit(es []entry, unit string) []entry {
	var out []entry
	for _, e := range es {
		if e["_SYSTEMD_UNIT"] == unit {
			out = append(out, e)
		}
	}
	return out
}

// changes are the daemon's records for one item logged after cursor ("" =
// this boot).
func (h host) changes(t testing.TB, cursor, item string) []entry {
	t.Helper()
	var es []entry
	if cursor == "" {
		es = h.journal(t, "-b")
	} else {
		es = h.after(t, cursor)
	}
	var out []entry
	for _, e := range ofUnit(es, "ecs-remediator.service") {
		if e["ITEM"] == item {
			out = append(out, e)
		}
	}
	return out
}

// unitStarts counts "Started UNIT" records of PID 1 after cursor.
func (h host) unitStarts(t testing.TB, cursor, unit string) int {
	t.Helper()
	n := 0
	for _, e := range h.after(t, cursor) {
		// 39f53479d3a045ac8e11786248231fbf: systemd's "unit started" message.
		if e["_PID"] == "1" && e["MESSAGE_ID"] == "39f53479d3a045ac8e11786248231fbf" && e["UNIT"] == unit {
			n++
		}
	}
	return n
}

// messages joins the MESSAGE fields of records.
func messages(es []entry) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(e["MESSAGE"])
		b.WriteByte('\n')
	}
	return b.String()
}

// ecsConfigRepaired says whether ecs.config sets both task-role flags to a
// plain true and nothing overrides them later.
func ecsConfigRepaired(cfg string) (bool, string) {
	last := map[string]string{}
	for _, line := range strings.Split(cfg, "\n") {
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		last[k] = v // ecs-init: the last one wins, no comment handling
	}
	for _, k := range []string{"ECS_ENABLE_TASK_IAM_ROLE", "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST"} {
		if last[k] != "true" {
			return false, fmt.Sprintf("%s=%q in:\n%s", k, last[k], cfg)
		}
	}
	return true, ""
}

// natRules is the container's nat table as iptables -S prints it.
func (h host) natRules(t testing.TB) string {
	t.Helper()
	return h.MustExec(t, "iptables", "-t", "nat", "-S")
}

// credentialRules counts the two credential NAT rules in an iptables -S or
// iptables-save listing, or a saved ruleset in ecs-init's spelling
// ("-A PREROUTING -p tcp -d 169.254.170.2 --dport 80 -j DNAT ...").
func credentialRules(listing string) (dnat, redirect int) {
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		args := map[string]string{}
		for i := 2; i+1 < len(f); i++ {
			if strings.HasPrefix(f[i], "-") {
				args[f[i]] = f[i+1]
			}
		}
		if strings.TrimSuffix(args["-d"], "/32") != "169.254.170.2" || args["-p"] != "tcp" || args["--dport"] != "80" {
			continue
		}
		switch {
		case f[1] == "PREROUTING" && args["-j"] == "DNAT" && args["--to-destination"] == "127.0.0.1:51679":
			dnat++
		case f[1] == "OUTPUT" && args["-j"] == "REDIRECT" && args["--to-ports"] == "51679":
			redirect++
		}
	}
	return dnat, redirect
}
