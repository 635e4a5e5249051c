package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// report is the JSON shape of check --json, a documented contract.
type report struct {
	Compliant bool              `json:"compliant"`
	Findings  []finding.Finding `json:"findings"`
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "<redacted, N bytes>" stays readable
	return enc.Encode(v)
}

// displayStatus is what the human table shows: warnings stand out even
// though they do not make a host non-compliant.
func displayStatus(f finding.Finding) string {
	if f.Warned() {
		return "warn"
	}
	return string(f.Status)
}

// wide is set by --wide: table cells are printed whole, never wrapped or
// shortened.
var wide bool

// wideFlag adds --wide to a command that prints a table.
func (f *flags) wideFlag() {
	f.BoolVar(&wide, "wide", false, "print every DETAIL and fix whole, on one line, as a pipe gets them")
}

// tableWidth is how wide a table printed on w may be: 0 (whole lines) for
// --wide and anything that is not a terminal; on a terminal $COLUMNS, or
// else the terminal's size.
func tableWidth(w io.Writer) int {
	if wide {
		return 0
	}
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0 // not a terminal: a pipe or a file gets whole lines
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return int(ws.Col)
}

// row is one line of a findings table.
type row struct{ status, item, detail, fix string }

// writeTable prints findings as a table with the fix under every finding
// that needs one, then a one-line summary.
func writeTable(w io.Writer, fs []finding.Finding) {
	var rows []row
	counts := map[string]int{}
	var others []finding.Finding
	for _, f := range fs {
		if f.Detail == notRead {
			counts["not checked (needs root)"]++ // said once, on stderr
			continue
		}
		others = append(others, f)
		r := row{status: displayStatus(f), item: f.Item, detail: f.Detail}
		counts[r.status]++
		if f.Status != finding.OK {
			r.fix = f.Fix
		}
		rows = append(rows, r)
	}
	renderTable(w, rows, tableWidth(w))
	verdict := "compliant"
	switch {
	case !finding.Compliant(others):
		verdict = "NOT compliant"
	case len(others) < len(fs):
		verdict = "compliant as far as checked"
	}
	var parts []string
	for _, st := range []string{"ok", "warn", "drift", "error", "not checked (needs root)"} {
		if counts[st] > 0 || st == "ok" {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	fmt.Fprintf(w, "\n%s: %s\n", verdict, strings.Join(parts, ", "))
}

// cell is the text of one table cell: one line, control characters
// escaped (escape.go). Every cell goes through it.
func cell(s string) string { return escapeTerminal(oneLine(s)) }

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// minDetail is the narrowest DETAIL column worth printing beside the item;
// below it each detail goes on its own lines under the item.
const minDetail = 40

// renderTable prints STATUS ITEM DETAIL. With width 0 every row is one
// whole line, aligned. Otherwise DETAIL and the fix wrap within width: in
// a column when it leaves at least minDetail characters, else under the
// item, indented.
func renderTable(w io.Writer, rows []row, width int) {
	statusW, itemW := len("STATUS"), len("ITEM")
	for i := range rows {
		r := &rows[i]
		r.status, r.item, r.detail, r.fix = cell(r.status), cell(r.item), cell(r.detail), cell(r.fix)
		if width > 0 {
			r.fix = shortFix(r.detail, r.fix)
		}
		statusW = max(statusW, runeLen(r.status))
		itemW = max(itemW, runeLen(r.item))
	}
	col := statusW + 2 + itemW + 2
	fixLabel := "  fix:"
	if width > 0 && width-col < minDetail {
		// Stacked: the item, then its detail and fix indented below it.
		const indent = 8
		indentS := strings.Repeat(" ", indent)
		fmt.Fprintf(w, "%-*s  %s\n", statusW, "STATUS", "ITEM")
		for _, r := range rows {
			fmt.Fprintf(w, "%-*s  %s\n", statusW, r.status, r.item)
			for _, l := range wrap(r.detail, width-indent) {
				fmt.Fprintf(w, "%s%s\n", indentS, l)
			}
			if r.fix != "" {
				for i, l := range wrap(r.fix, width-indent-len("fix: ")) {
					label := "fix: "
					if i > 0 {
						label = "     "
					}
					fmt.Fprintf(w, "%s%s%s\n", indentS, label, l)
				}
			}
		}
		return
	}
	line := func(status, item, text string) {
		lines := []string{text}
		if width > 0 {
			lines = wrap(text, width-col)
		}
		fmt.Fprintf(w, "%s\n", strings.TrimRight(fmt.Sprintf("%s%s  %s%s  %s", status, pad(status, statusW), item, pad(item, itemW), lines[0]), " "))
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "%s%s\n", strings.Repeat(" ", col), l)
		}
	}
	line("STATUS", "ITEM", "DETAIL")
	for _, r := range rows {
		line(r.status, r.item, r.detail)
		if r.fix != "" {
			line("", fixLabel, r.fix)
		}
	}
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

func pad(s string, w int) string { return strings.Repeat(" ", max(w-runeLen(s), 0)) }

// wrap breaks s into lines of at most width characters at spaces; a word
// longer than a line (a long path) is cut.
func wrap(s string, width int) []string {
	width = max(width, 10)
	var lines []string
	line := []rune{}
	for _, word := range strings.Fields(s) {
		wr := []rune(word)
		for len(wr) > width {
			if len(line) > 0 {
				lines = append(lines, string(line))
				line = line[:0]
			}
			lines = append(lines, string(wr[:width]))
			wr = wr[width:]
		}
		switch {
		case len(line) == 0:
			line = append(line, wr...)
		case len(line)+1+len(wr) <= width:
			line = append(append(line, ' '), wr...)
		default:
			lines = append(lines, string(line))
			line = append(line[:0:0], wr...)
		}
	}
	return append(lines, string(line))
}

// runsRe is a fix that lists the commands apply runs.
var (
	runsRe = regexp.MustCompile(`^(.*) \(runs: (.*)\)$`)
	cmdRe  = regexp.MustCompile(`^(\S+) (-t \S+) (-[AID]) (\S+)((?: \d+)?) (.*)$`)
)

// shortFix shortens a fix that repeats the detail: "ecs-remediator apply
// (runs: iptables -t nat -A OUTPUT <the rule the detail shows>)" becomes
// "ecs-remediator apply (runs iptables -t nat -A OUTPUT with the rule above)". A
// fix with any command the detail does not show is kept whole.
func shortFix(detail, fix string) string {
	m := runsRe.FindStringSubmatch(fix)
	if m == nil {
		return fix
	}
	var verbs []string
	for _, c := range strings.Split(m[2], "; ") {
		cm := cmdRe.FindStringSubmatch(c)
		// The detail may name the tool differently (iptables, iptables-nft).
		if cm == nil || !strings.Contains(detail, " "+cm[2]+" "+cm[4]+" "+cm[6]) {
			return fix
		}
		verbs = append(verbs, cm[1]+" "+cm[2]+" "+cm[3]+" "+cm[4]+cm[5])
	}
	what := "the rule above"
	if len(verbs) > 1 {
		what = "the rules above"
	}
	return fmt.Sprintf("%s (runs %s with %s)", m[1], strings.Join(verbs, ", "), what)
}

func hasStatus(fs []finding.Finding, st finding.Status) bool {
	for _, f := range fs {
		if f.Status == st {
			return true
		}
	}
	return false
}

// writeResults prints doctor (or lint) results as an aligned table with the
// fix under each one that needs it, then a one-line verdict.
func writeResults(w io.Writer, rs []finding.Result, good, bad string) {
	var rows []row
	counts := map[finding.Status]int{}
	for _, r := range rs {
		counts[r.Status]++
		tr := row{status: string(r.Status), item: r.Item, detail: r.Detail}
		if r.Status != finding.OK {
			tr.fix = r.Fix
		}
		rows = append(rows, tr)
	}
	renderTable(w, rows, tableWidth(w))
	verdict := good
	if finding.Failed(rs) {
		verdict = bad
	}
	var parts []string
	for _, st := range []finding.Status{finding.OK, finding.Warn, finding.Fail, finding.Skip} {
		parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
	}
	fmt.Fprintf(w, "\n%s: %s\n", verdict, strings.Join(parts, ", "))
}
