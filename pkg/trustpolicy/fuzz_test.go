package trustpolicy

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLint: Lint must never panic, and when it accepts a document it
// returns the three fixed items first, each with a status and a detail.
func FuzzLint(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, uint8(0))
		}
	}
	f.Add([]byte(`{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"NotAction":"sts:*"}}`), uint8(2))
	f.Add([]byte(`{"Role":{"AssumeRolePolicyDocument":"%7B%7D"}}`), uint8(1))
	f.Add([]byte(`%7B`), uint8(0))
	purposes := []Purpose{Task, Instance, CrossAccount}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		p := purposes[int(which)%len(purposes)]
		rs, err := Lint(data, "fuzz.json", p, "arn:aws:iam::111122223333:role/my-task-role")
		if err != nil {
			return
		}
		if len(rs) < 3 || rs[0].Item != ItemAssumeRole || rs[1].Item != ItemWildcardPrincipal || rs[2].Item != ItemConditions {
			t.Fatalf("unexpected results %+v", rs)
		}
		for _, r := range rs {
			if r.Status == "" || r.Detail == "" {
				t.Fatalf("empty result %+v", r)
			}
		}
	})
}
