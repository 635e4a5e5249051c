package ecsconfig

import (
	"strings"

	udiff "github.com/aymanbagabas/go-udiff"
)

// UnifiedDiff returns a unified diff ("--- a/PATH", "+++ b/PATH", hunks
// with 3 lines of context, "\ No newline at end of file" where it applies)
// from old to new content of path; "" when they are equal.
func UnifiedDiff(path string, old, new []byte) string {
	p := strings.TrimPrefix(path, "/")
	return udiff.Unified("a/"+p, "b/"+p, string(old), string(new))
}
