package atomicfile

import (
	"strings"

	udiff "github.com/aymanbagabas/go-udiff"
)

// Diff is what a dry run prints for a file that Replace would rewrite: a
// unified diff ("--- a/PATH", "+++ b/PATH", hunks with 3 lines of context,
// "\ No newline at end of file" where it applies) from old to new; "" when
// they are equal. Every enforcer's dry run uses it, so all plans look alike.
func Diff(path string, old, new []byte) string {
	p := strings.TrimPrefix(path, "/")
	return udiff.Unified("a/"+p, "b/"+p, string(old), string(new))
}
