// Package suggest finds the known name closest to a mistyped one, for the
// "did you mean" of unknown commands, flags and policy keys. It is pure
// logic: it owns no state and touches nothing.
package suggest

// Closest returns the candidate nearest to name: the one with the
// smallest edit distance (insertions, deletions, substitutions and swaps of
// two neighbouring characters), if that distance is small for the length
// of the name (1 for names up to 4 characters, 2 up to 8, then 3); or else
// the only candidate that starts with name. It returns "" when nothing is
// close, so a wild guess is never offered.
func Closest(name string, candidates []string) string {
	if name == "" {
		return ""
	}
	best, bestD := "", -1
	for _, c := range candidates {
		if c == name {
			return c
		}
		d := distance(name, c)
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	max := 3
	switch n := len([]rune(name)); {
	case n <= 4:
		max = 1
	case n <= 8:
		max = 2
	}
	if bestD >= 0 && bestD <= max {
		return best
	}
	prefixed := ""
	for _, c := range candidates {
		if len(name) >= 3 && len(c) > len(name) && c[:len(name)] == name {
			if prefixed != "" {
				return "" // ambiguous
			}
			prefixed = c
		}
	}
	return prefixed
}

// distance is the optimal string alignment distance between a and b.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
