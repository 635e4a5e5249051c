package e2e

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
)

// TestPackagedPolicyIsShortAndCommented: the policy file the packages
// install (packaging/config.yaml) sets nothing (every line a comment), so
// the defaults come from the binary and an upgrade that changes one makes
// no .rpmnew and no dpkg prompt; and its commented examples, uncommented,
// load and show the built-in defaults, so they cannot go stale. The full
// reference is pkg/policy/reference.yaml (the man page). No root needed.
func TestPackagedPolicyIsShortAndCommented(t *testing.T) {
	path := filepath.Join(repoRoot(), "packaging/config.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 60 {
		t.Errorf("packaging/config.yaml has %d lines; keep it short (what an operator commonly changes), the reference is pkg/policy/reference.yaml", len(lines))
	}
	var uncommented []string
	example := regexp.MustCompile(`^#( *)([A-Za-z_]+:.*)$`) // "#key: value" or "#  key: value"
	for i, l := range lines {
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "#") {
			t.Errorf("packaging/config.yaml line %d sets something (%q): the shipped file must be all comments", i+1, l)
		}
		if m := example.FindStringSubmatch(l); m != nil {
			uncommented = append(uncommented, m[1]+m[2])
		}
	}
	if p, err := policy.Parse(data, path); err != nil || !samePolicy(p, policy.Default()) {
		t.Errorf("packaging/config.yaml does not load to the defaults: %v", err)
	}
	ex := []byte(strings.Join(uncommented, "\n") + "\n")
	p, err := policy.Parse(ex, "packaging/config.yaml, uncommented")
	if err != nil {
		t.Fatalf("the examples in packaging/config.yaml, uncommented, do not load: %v\n%s", err, ex)
	}
	def := policy.Default()
	def.ExtraSettings = p.ExtraSettings // the one example that is not a default
	if !samePolicy(p, def) {
		t.Errorf("the examples in packaging/config.yaml, uncommented, are not the defaults:\n%s\n got %+v\nwant %+v", ex, *p, *def)
	}
}

// samePolicy tells whether a and b hold the same settings (every exported
// field), wherever they were read from.
func samePolicy(a, b *policy.Policy) bool {
	x, y := reflect.ValueOf(*a), reflect.ValueOf(*b)
	for i := 0; i < x.NumField(); i++ {
		if x.Type().Field(i).IsExported() && !reflect.DeepEqual(x.Field(i).Interface(), y.Field(i).Interface()) {
			return false
		}
	}
	return true
}
