package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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

// writeTable prints findings as a short aligned table with the fix under
// every finding that needs one, then a one-line summary.
func writeTable(w io.Writer, fs []finding.Finding) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tITEM\tDETAIL")
	counts := map[string]int{}
	for _, f := range fs {
		st := displayStatus(f)
		counts[st]++
		fmt.Fprintf(tw, "%s\t%s\t%s\n", st, f.Item, oneLine(f.Detail))
		if f.Fix != "" && f.Status != finding.OK {
			fmt.Fprintf(tw, "\t  fix:\t%s\n", oneLine(f.Fix))
		}
	}
	tw.Flush()
	verdict := "compliant"
	if !finding.Compliant(fs) {
		verdict = "NOT compliant"
	}
	var parts []string
	for _, st := range []string{"ok", "warn", "drift", "error"} {
		if counts[st] > 0 || st == "ok" {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	fmt.Fprintf(w, "\n%s: %s\n", verdict, strings.Join(parts, ", "))
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func hasStatus(fs []finding.Finding, st finding.Status) bool {
	for _, f := range fs {
		if f.Status == st {
			return true
		}
	}
	return false
}
