package saved

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
	"github.com/ecs-remediator/ecs-remediator/pkg/safefile"
)

// line is one line of the file.
type line struct {
	raw   string // without the line ending
	table string // section it is in ("" outside)
	kind  byte   // '*' section, ':' chain, 'A' rule, 'C' COMMIT, 0 other
	chain string // for ':' and 'A'
	key   string // for 'A' lines that may be ours
}

// File is a saved ruleset as lines: every byte of what was parsed is
// kept, and Bytes gives it back unchanged until Ensure edits our rules'
// lines.
type File struct {
	lines   []line
	eol     string
	lastEOL bool // the file ended with a line ending
}

// Parse reads a saved ruleset's text. Only the rule lines that mention
// one of needles (see rule.Interest) are keyed, so the cost of a large
// file is its lines, not its lines times our rules.
func Parse(data string, needles []string) *File {
	f := &File{eol: "\n"}
	if strings.Contains(data, "\r\n") {
		f.eol = "\r\n"
	}
	f.lastEOL = data == "" || strings.HasSuffix(data, "\n")
	data = strings.TrimSuffix(data, "\n")
	if data == "" && f.lastEOL {
		return f
	}
	table := ""
	for _, raw := range strings.Split(data, "\n") {
		raw = strings.TrimSuffix(raw, "\r")
		l := line{raw: raw}
		s := strings.TrimSpace(raw)
		switch {
		case strings.HasPrefix(s, "*"):
			table = strings.TrimSpace(s[1:])
			l.kind = '*'
		case s == "COMMIT":
			l.kind = 'C'
		case strings.HasPrefix(s, ":"):
			l.kind = ':'
			l.chain, _, _ = strings.Cut(s[1:], " ")
		default:
			if strings.HasPrefix(s, "[") {
				if i := strings.IndexByte(s, ']'); i > 0 {
					s = strings.TrimSpace(s[i+1:])
				}
			}
			if strings.HasPrefix(s, "-A ") || strings.HasPrefix(s, "-I ") {
				l.kind = 'A'
				var text string
				l.chain, text, _ = strings.Cut(s[3:], " ")
				if strings.HasPrefix(s, "-I ") { // -I CHAIN [n] spec
					if n, rest, ok := strings.Cut(text, " "); ok {
						if _, err := strconv.Atoi(n); err == nil {
							text = rest
						}
					}
				}
				if rule.MentionsAny(text, needles) {
					l.key, _, _ = rule.Key(text, false)
				}
			}
		}
		l.table = table
		f.lines = append(f.lines, l)
		if l.kind == 'C' {
			table = ""
		}
	}
	return f
}

// Bytes is the file's content, with its line endings as parsed.
func (f *File) Bytes() []byte {
	var b strings.Builder
	for i, l := range f.lines {
		b.WriteString(l.raw)
		if i < len(f.lines)-1 || f.lastEOL {
			b.WriteString(f.eol)
		}
	}
	return []byte(b.String())
}

func (f *File) insert(at int, l line) {
	f.lines = append(f.lines, line{})
	copy(f.lines[at+1:], f.lines[at:])
	f.lines[at] = l
}

func (f *File) remove(at int) {
	f.lines = append(f.lines[:at], f.lines[at+1:]...)
}

// section returns the index of the "*table" line and of its COMMIT (-1, -1
// when the table has no section).
func (f *File) section(table string) (int, int) {
	start := -1
	for i, l := range f.lines {
		if l.kind == '*' && l.table == table && start < 0 {
			start = i
		}
		if start >= 0 && l.kind == 'C' && i > start {
			return start, i
		}
	}
	if start >= 0 {
		return start, len(f.lines) // no COMMIT: restore would reject it anyway
	}
	return -1, -1
}

// copiesOf lists the line indexes of rules with key in table/chain.
func (f *File) copiesOf(table, chain, key string) []int {
	var out []int
	for i, l := range f.lines {
		if l.kind == 'A' && l.table == table && l.chain == chain && l.key == key {
			out = append(out, i)
		}
	}
	return out
}

// Result is what Ensure found and did.
type Result struct {
	Notes  []string // what was missing, duplicated or out of order
	Docker []int    // 1-based line numbers of Docker-managed content
}

// Ensure makes every required want present once in f (IPv4 only), in
// ecs-init's order, and returns what it changed. It removes extra copies
// of our rules only, moves our rules only to restore their order among
// themselves, and adds a missing rule (with its section and, for a new
// chain, its declaration); every other line is kept as it was.
func (f *File) Ensure(ws []rule.Want) Result {
	var res Result
	res.Docker = dockerLines(f)
	for i := range ws {
		w := &ws[i]
		if w.V6 {
			continue
		}
		cp := f.copiesOf(w.Table, w.Chain, w.Key)
		if len(cp) > 1 {
			res.Notes = append(res.Notes, fmt.Sprintf("%d copies of -t %s -A %s %s", len(cp), w.Table, w.Chain, w.Spell()))
			for j := len(cp) - 1; j >= 1; j-- {
				f.remove(cp[j])
			}
		}
	}
	for i := range ws {
		w := &ws[i]
		if w.V6 || w.Before == "" {
			continue
		}
		b := &rule.Want{Table: w.Table, Chain: w.Chain, Key: w.Before}
		for j := range ws {
			if !ws[j].V6 && ws[j].Key == w.Before {
				b = &ws[j]
			}
		}
		cp, cb := f.copiesOf(w.Table, w.Chain, w.Key), f.copiesOf(b.Table, b.Chain, b.Key)
		if len(cp) == 1 && len(cb) == 1 && cp[0] > cb[0] {
			res.Notes = append(res.Notes, "out of order: -A "+w.Chain+" "+w.Spell()+" comes after "+b.Spell())
			l := f.lines[cp[0]]
			f.remove(cp[0])
			f.insert(cb[0], l)
		}
	}
	for i := range ws {
		w := &ws[i]
		if w.V6 || !w.Required || len(f.copiesOf(w.Table, w.Chain, w.Key)) > 0 {
			continue
		}
		res.Notes = append(res.Notes, "missing -t "+w.Table+" -A "+w.Chain+" "+w.Spell())
		start, commit := f.section(w.Table)
		if start < 0 {
			f.appendSection(w.Table)
			start, commit = f.section(w.Table)
		}
		if w.NewChain && !f.declares(start, commit, w.Chain) {
			at := start + 1
			for j := start + 1; j < commit; j++ {
				if f.lines[j].kind == ':' {
					at = j + 1
				}
			}
			f.insert(at, line{raw: ":" + w.Chain + " - [0:0]", table: w.Table, kind: ':', chain: w.Chain})
			commit++
		}
		f.insert(f.savedPosition(ws, i, start, commit), line{raw: "-A " + w.Chain + " " + w.Spell(), table: w.Table, kind: 'A', chain: w.Chain, key: w.Key})
	}
	return res
}

// savedPosition is where a missing rule goes in its section: for the
// INPUT group ecs-init's order at the top, for appended rules after the
// chain's last rule, else before COMMIT.
func (f *File) savedPosition(ws []rule.Want, i, start, commit int) int {
	w := &ws[i]
	order := map[string]int{}
	for _, o := range ws {
		if !o.V6 && o.Table == w.Table && o.Chain == w.Chain {
			order[o.Key] = o.Order
		}
	}
	firstRule, lastRule, after := -1, -1, -1
	for j := start + 1; j < commit; j++ {
		l := f.lines[j]
		if l.kind != 'A' || l.chain != w.Chain {
			continue
		}
		if firstRule < 0 {
			firstRule = j
		}
		lastRule = j
		if w.Place != rule.Top {
			continue
		}
		if o, ours := order[l.key]; ours && l.key != "" {
			if o > w.Order {
				return j
			}
			after = j
		}
	}
	switch {
	case w.Place == rule.Top && after >= 0:
		return after + 1
	case w.Place == rule.Top && firstRule >= 0:
		return firstRule
	case w.Place == rule.Append && lastRule >= 0:
		return lastRule + 1
	}
	return commit
}

func (f *File) declares(start, commit int, chain string) bool {
	for j := start + 1; j < commit; j++ {
		if f.lines[j].kind == ':' && f.lines[j].chain == chain {
			return true
		}
	}
	return false
}

// appendSection adds "*table ... COMMIT" at the end. Built-in chains are
// not declared, so restoring does not change their policies.
func (f *File) appendSection(table string) {
	f.lines = append(f.lines,
		line{raw: "*" + table, table: table, kind: '*'},
		line{raw: "COMMIT", table: table, kind: 'C'})
	f.lastEOL = true
}

// New is the content of a missing file before Ensure adds our rules:
// two comment lines naming the unit that restores it, and the nat, filter
// and raw sections with their built-in chains at policy ACCEPT (raw holds
// the raw-table localhost guard).
func New(t Target) *File {
	f := &File{eol: "\n", lastEOL: true}
	restoredBy := "a unit that runs iptables-restore at boot"
	if t.Service != "" {
		restoredBy = t.Service
	}
	f.lines = append(f.lines, line{raw: "# Created by ecs-remediator: the rules ECS tasks need for their IAM role credentials."},
		line{raw: "# Restored at boot by " + restoredBy + ". Add your own rules; ecs-remediator keeps them."})
	for _, table := range []string{"nat", "filter", "raw"} {
		f.lines = append(f.lines, line{raw: "*" + table, table: table, kind: '*'})
		for _, c := range rule.BuiltinChains(table) {
			f.lines = append(f.lines, line{raw: ":" + c + " ACCEPT [0:0]", table: table, kind: ':', chain: c})
		}
		f.lines = append(f.lines, line{raw: "COMMIT", table: table, kind: 'C'})
	}
	return f
}

// dockerLines finds Docker-managed chains and rules (1-based lines):
// restoring them at boot freezes Docker's per-container rules of the
// moment the file was saved.
func dockerLines(f *File) []int {
	var out []int
	for i, l := range f.lines {
		if l.kind != ':' && l.kind != 'A' {
			continue
		}
		s := l.raw
		if isDockerChain(l.chain) || strings.Contains(s, "-j MASQUERADE") && (strings.Contains(s, "docker0") || strings.Contains(s, "br-")) {
			out = append(out, i+1)
			continue
		}
		if t := rule.TargetOf(strings.TrimSpace(s)); isDockerChain(t) {
			out = append(out, i+1)
		}
	}
	return out
}

func isDockerChain(name string) bool {
	switch name {
	case "DOCKER", "DOCKER-FORWARD", "DOCKER-CT", "DOCKER-BRIDGE", "DOCKER-INGRESS":
		return true
	}
	return strings.HasPrefix(name, "DOCKER-ISOLATION")
}

// MaxSize is the largest saved ruleset read: 50 000 rules are about 5 MB.
const MaxSize = 64 << 20

// Read reads the file (pkg/safefile: only a regular file is opened,
// never blocking, at most MaxSize bytes); a missing file gives nil, nil.
func Read(path string) ([]byte, error) {
	f, err := safefile.Read(path, safefile.Options{Max: MaxSize})
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("saved ruleset: %w", err)
	}
	if f.Data == nil {
		f.Data = []byte{}
	}
	return f.Data, nil
}
