// Command changelog renders CHANGELOG.md (Keep a Changelog form) as the
// RPM %changelog and the Debian changelog the packages carry, so the three
// never drift: `make rpm` and `make deb` run it.
//
//	go run ./packaging/changelog -format rpm|deb -version V-R [-date YYYY-MM-DD] [-in CHANGELOG.md]
//
// Every "## [X.Y.Z] - YYYY-MM-DD" section becomes an entry X.Y.Z-1 of that
// date. A build that is not one of those releases gets a first entry with
// its own version (-version) and -date (default: today, never before the
// newest release), holding the "## [Unreleased]" items. "### Added" headings become an "Added: "
// prefix of their items. It reads only its input and writes stdout.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"
)

const (
	maintainer = "ecs-remediator maintainers"
	email      = "ecs-remediator@users.noreply.github.com"
)

// Release is one section of CHANGELOG.md.
type Release struct {
	Version string    // "X.Y.Z", or "" for Unreleased
	Date    time.Time // zero for Unreleased
	Items   []string  // "Added: text", one per list item, white space joined
}

var (
	sectionRe = regexp.MustCompile(`^## \[([^\]]+)\](?:\s+-\s+(\d{4}-\d{2}-\d{2}))?\s*$`)
	linkRe    = regexp.MustCompile(`\[([^\]]+)\]\([^)]*\)`)
	versionRe = regexp.MustCompile(`^\d+\.\d+\.\d+$`)
)

// Parse reads the sections of a Keep a Changelog file.
func Parse(r io.Reader) ([]Release, error) {
	var out []Release
	var cur *Release
	kind := ""
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t")
		if m := sectionRe.FindStringSubmatch(line); m != nil {
			rel := Release{}
			if strings.EqualFold(m[1], "Unreleased") {
				if len(out) > 0 {
					return nil, fmt.Errorf("CHANGELOG.md line %d: [Unreleased] must be the first section", n)
				}
			} else {
				if !versionRe.MatchString(m[1]) || m[2] == "" {
					return nil, fmt.Errorf("CHANGELOG.md line %d: want \"## [X.Y.Z] - YYYY-MM-DD\", got %q", n, line)
				}
				d, err := time.Parse("2006-01-02", m[2])
				if err != nil {
					return nil, fmt.Errorf("CHANGELOG.md line %d: date %q: %v", n, m[2], err)
				}
				rel.Version, rel.Date = m[1], d
			}
			out = append(out, rel)
			cur, kind = &out[len(out)-1], ""
			continue
		}
		if cur == nil {
			continue // the title and the preamble
		}
		switch {
		case strings.HasPrefix(line, "### "):
			kind = strings.TrimSpace(line[4:])
		case strings.HasPrefix(line, "- ") || strings.HasPrefix(line, "* "):
			item := clean(line[2:])
			if kind != "" {
				item = kind + ": " + item
			}
			cur.Items = append(cur.Items, item)
		case strings.HasPrefix(line, "  ") && strings.TrimSpace(line) != "" && len(cur.Items) > 0:
			cur.Items[len(cur.Items)-1] += " " + clean(line)
		}
		// Anything else (paragraphs, link reference definitions) is not an entry.
	}
	return out, sc.Err()
}

func clean(s string) string {
	return linkRe.ReplaceAllString(strings.Join(strings.Fields(s), " "), "$1")
}

// entries are the releases to render, newest first: Unreleased (when it
// has items) as version, then every release as X.Y.Z-1.
type entry struct {
	version string
	date    time.Time
	items   []string
}

func entries(rels []Release, version string, date time.Time) []entry {
	var out []entry
	released := false // the build is one of the releases listed
	for _, r := range rels {
		released = released || r.Version+"-1" == version
	}
	for _, r := range rels {
		if r.Version == "" {
			if len(r.Items) > 0 && !released {
				out = append(out, entry{version, date, r.Items})
			}
			continue
		}
		out = append(out, entry{r.Version + "-1", r.Date, r.Items})
	}
	// The newest entry is the package's own version (rpmlint and lintian
	// check it), also for a snapshot with nothing under Unreleased yet.
	if !released && (len(out) == 0 || out[0].version != version) {
		out = append([]entry{{version, date, []string{"Development build: no changes listed under Unreleased."}}}, out...)
	}
	// Never before the newest release: rpm wants entries in descending date order.
	for i := len(out) - 2; i >= 0; i-- {
		if out[i].date.Before(out[i+1].date) {
			out[i].date = out[i+1].date
		}
	}
	return out
}

// RPM renders a %changelog body. "%" is doubled (rpm expands macros there).
func RPM(w io.Writer, es []entry) {
	for i, e := range es {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "* %s %s <%s> - %s\n", e.date.Format("Mon Jan 02 2006"), maintainer, email, e.version)
		if len(e.items) == 0 {
			fmt.Fprintln(w, "- No user-visible changes.")
		}
		for _, it := range e.items {
			for j, l := range wrap(strings.ReplaceAll(it, "%", "%%"), 76) {
				if j == 0 {
					fmt.Fprintf(w, "- %s\n", l)
				} else {
					fmt.Fprintf(w, "  %s\n", l)
				}
			}
		}
	}
}

// Deb renders debian/changelog.
func Deb(w io.Writer, es []entry) {
	for _, e := range es {
		fmt.Fprintf(w, "ecs-remediator (%s) stable; urgency=medium\n\n", e.version)
		if len(e.items) == 0 {
			fmt.Fprintln(w, "  * No user-visible changes.")
		}
		for _, it := range e.items {
			for j, l := range wrap(it, 74) {
				if j == 0 {
					fmt.Fprintf(w, "  * %s\n", l)
				} else {
					fmt.Fprintf(w, "    %s\n", l)
				}
			}
		}
		fmt.Fprintf(w, "\n -- %s <%s>  %s\n\n", maintainer, email, e.date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	}
}

func wrap(s string, width int) []string {
	var lines []string
	cur := ""
	for _, w := range strings.Fields(s) {
		if cur != "" && len(cur)+1+len(w) > width {
			lines = append(lines, cur)
			cur = w
			continue
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	return append(lines, cur)
}

func main() {
	in := flag.String("in", "CHANGELOG.md", "the Keep a Changelog file")
	format := flag.String("format", "", "rpm or deb")
	version := flag.String("version", "", "the build's VERSION-RELEASE (for the Unreleased entry)")
	date := flag.String("date", "", "the Unreleased entry's date, YYYY-MM-DD (default today, UTC)")
	flag.Parse()
	if *version == "" || (*format != "rpm" && *format != "deb") {
		fmt.Fprintln(os.Stderr, "usage: changelog -format rpm|deb -version VERSION-RELEASE [-date YYYY-MM-DD] [-in CHANGELOG.md]")
		os.Exit(2)
	}
	d := time.Now().UTC().Truncate(24 * time.Hour)
	if *date != "" {
		var err error
		if d, err = time.Parse("2006-01-02", *date); err != nil {
			fmt.Fprintf(os.Stderr, "changelog: -date %q: want YYYY-MM-DD\n", *date)
			os.Exit(2)
		}
	}
	f, err := os.Open(*in)
	if err != nil {
		fmt.Fprintf(os.Stderr, "changelog: %v\n", err)
		os.Exit(1)
	}
	rels, err := Parse(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "changelog: %s: %v\n", *in, err)
		os.Exit(1)
	}
	es := entries(rels, *version, d)
	if len(es) == 0 {
		fmt.Fprintf(os.Stderr, "changelog: %s has no release and nothing under [Unreleased]\n", *in)
		os.Exit(1)
	}
	if *format == "rpm" {
		RPM(os.Stdout, es)
	} else {
		Deb(os.Stdout, es)
	}
}
