package dropin

import (
	"fmt"
	"sort"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// fileEdit is the new content of one drop-in and the changes it makes.
type fileEdit struct {
	file    *dropinFile
	data    []byte
	changes []finding.Change
}

type splice struct {
	start, end int
	text       string
}

// edits turns the fixes into new file contents: the decisive assignment's
// bytes are replaced by one double-quoted word, or a new Environment= line
// goes right after the line that sets the proxy (nothing after that line
// can reset NO_PROXY without resetting the proxy too). Every other byte is
// kept.
func (o observation) edits(cfg Config) []fileEdit {
	byFile := map[*dropinFile][]splice{}
	changes := map[*dropinFile][]finding.Change{}
	var order []*dropinFile
	for _, fx := range o.fixes {
		f := fx.file()
		if _, seen := byFile[f]; !seen {
			order = append(order, f)
			byFile[f] = nil
		}
		word := quoteAssignment(fx.key, fx.to)
		c := finding.Change{
			Item: cfg.Item, Target: f.path,
			Old: resolveSpecifiers(fx.from), New: resolveSpecifiers(fx.to),
			AgentRestart: !cfg.NoRestart, SystemdReload: !cfg.NoRestart,
		}
		if fx.old != nil {
			byFile[f] = append(byFile[f], splice{fx.old.a.start, fx.old.a.end, word})
			c.Action = fmt.Sprintf("rewrote %s in the Environment= of line %d", fx.key, fx.old.dir.line)
		} else {
			at := fx.at.dir.end
			eol := "\n"
			if at >= 2 && string(f.data[at-2:at]) == "\r\n" {
				eol = "\r\n" // keep the file's line ends
			}
			text := "Environment=" + word + eol
			if at == len(f.data) && at > 0 && f.data[at-1] != '\n' {
				text = eol + text
			}
			byFile[f] = append(byFile[f], splice{at, at, text})
			c.Action = fmt.Sprintf("added Environment=%s after line %d", word, fx.at.dir.line)
		}
		c.Reason = fmt.Sprintf("%s is set (%s) and %s: credential and metadata requests would go to the proxy", o.proxy.a.key, o.proxy.where(), fx.why)
		changes[f] = append(changes[f], c)
	}
	var out []fileEdit
	for _, f := range order {
		sp := byFile[f]
		sort.Slice(sp, func(i, j int) bool { return sp[i].start > sp[j].start })
		data := append([]byte(nil), f.data...)
		for _, s := range sp {
			data = append(data[:s.start:s.start], append([]byte(s.text), data[s.end:]...)...)
		}
		out = append(out, fileEdit{file: f, data: data, changes: changes[f]})
	}
	return out
}
