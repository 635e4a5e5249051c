package trustpolicy

import (
	"fmt"
	"unicode/utf8"
)

// lineCol returns the 1-based line and column (in characters) of byte
// offset off in data.
func lineCol(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	if off < 0 {
		off = 0
	}
	line, start := 1, 0
	for i := 0; i < off; i++ {
		if data[i] == '\n' {
			line++
			start = i + 1
		}
	}
	return line, utf8.RuneCount(data[start:off]) + 1
}

// doc is the text being parsed, for error positions.
type doc struct {
	file string
	data []byte
	note string // how data was obtained when it is not the file as is, e.g. " (in the URL-decoded document)"
}

// errorf returns an error that names file:line:col of offset off.
func (d *doc) errorf(off int, format string, args ...any) error {
	line, col := lineCol(d.data, off)
	return fmt.Errorf("%s:%d:%d%s: %s", d.file, line, col, d.note, fmt.Sprintf(format, args...))
}
