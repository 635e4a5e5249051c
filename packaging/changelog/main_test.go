package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

const sample = `# Changelog

Preamble with a [link](https://example.com).

## [Unreleased]

### Fixed

- A fix with 100% less [noise](https://example.com),
  on two lines.

## [1.1.0] - 2026-11-30

### Added

- Feature B.

## [1.0.0] - 2026-10-01

- Plain item.

[1.1.0]: https://example.com/compare
`

func TestRender(t *testing.T) {
	rels, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	es := entries(rels, "1.1.1-0.3.gabc1234", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	if len(es) != 3 || es[0].version != "1.1.1-0.3.gabc1234" || es[1].version != "1.1.0-1" || es[2].version != "1.0.0-1" {
		t.Fatalf("entries = %+v", es)
	}
	if !es[0].date.Equal(es[1].date) {
		t.Errorf("the Unreleased entry is dated %v, before the newest release %v", es[0].date, es[1].date)
	}
	if es[0].items[0] != "Fixed: A fix with 100% less noise, on two lines." {
		t.Errorf("item = %q", es[0].items[0])
	}
	var rpm, deb bytes.Buffer
	RPM(&rpm, es)
	Deb(&deb, es)
	for _, want := range []string{
		"* Mon Nov 30 2026 ecs-remediator maintainers <ecs-remediator@users.noreply.github.com> - 1.1.1-0.3.gabc1234\n- Fixed: A fix with 100%% less noise, on two lines.\n",
		"* Thu Oct 01 2026 ecs-remediator maintainers <ecs-remediator@users.noreply.github.com> - 1.0.0-1\n- Plain item.\n",
	} {
		if !strings.Contains(rpm.String(), want) {
			t.Errorf("rpm changelog lacks %q:\n%s", want, rpm.String())
		}
	}
	for _, want := range []string{
		"ecs-remediator (1.1.0-1) stable; urgency=medium\n\n  * Added: Feature B.\n\n -- ecs-remediator maintainers <ecs-remediator@users.noreply.github.com>  Mon, 30 Nov 2026 00:00:00 +0000\n",
	} {
		if !strings.Contains(deb.String(), want) {
			t.Errorf("deb changelog lacks %q:\n%s", want, deb.String())
		}
	}
	// A tagged build lists no Unreleased entry; an untagged one with
	// nothing under Unreleased still gets an entry of its own version.
	if es := entries(rels, "1.1.0-1", time.Time{}); es[0].version != "1.1.0-1" || len(es) != 2 {
		t.Errorf("tagged build: entries %+v", es)
	}
	rels[0].Items = nil
	if es := entries(rels, "1.1.1-0.1.gabc1234", time.Time{}); es[0].version != "1.1.1-0.1.gabc1234" || len(es) != 3 {
		t.Errorf("snapshot without Unreleased items: entries %+v", es)
	}
	if _, err := Parse(strings.NewReader("## [1.0] - 2026-01-01\n")); err == nil {
		t.Error("a version that is not X.Y.Z is accepted")
	}
	if _, err := Parse(strings.NewReader("## [1.0.0] - 2026-01-01\n## [Unreleased]\n")); err == nil {
		t.Error("[Unreleased] after a release is accepted")
	}
}
