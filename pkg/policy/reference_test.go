package policy

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The reference (the man page's POLICY FILE section) loads to exactly the
// built-in defaults and names every key, so no key is undocumented and no
// documented default is wrong.
func TestReferenceIsTheDefaults(t *testing.T) {
	p, err := Parse([]byte(Reference()), "pkg/policy/reference.yaml")
	if err != nil {
		t.Fatalf("reference.yaml does not load: %v", err)
	}
	if !equal(p, Default()) {
		t.Errorf("reference.yaml differs from Default():\n got %+v\nwant %+v", *p, *Default())
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(Reference()), &doc); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	yamlKeys(doc.Content[0], "", have)
	want := map[string]bool{}
	structKeys(reflect.TypeOf(Policy{}), "", want)
	var missing, unknown []string
	for k := range want {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	for k := range have {
		if !want[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(unknown)
	if len(missing) > 0 {
		t.Errorf("pkg/policy/reference.yaml lacks the keys %s (give each with its default and a comment)", strings.Join(missing, ", "))
	}
	if len(unknown) > 0 {
		t.Errorf("pkg/policy/reference.yaml has keys the policy does not know: %s", strings.Join(unknown, ", "))
	}
}

func yamlKeys(n *yaml.Node, prefix string, out map[string]bool) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if prefix != "" {
			k = prefix + "." + k
		}
		out[k] = true
		if prefix == "" && k == "extra_settings" {
			continue // free-form map
		}
		yamlKeys(n.Content[i+1], k, out)
	}
}

func structKeys(typ reflect.Type, prefix string, out map[string]bool) {
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		k := tag
		if prefix != "" {
			k = prefix + "." + tag
		}
		out[k] = true
		if f.Type.Kind() == reflect.Struct && f.Type.String() != "time.Duration" {
			structKeys(f.Type, k, out)
		}
	}
}
