package ecsconfig

import (
	"context"
	"os"
	"testing"
)

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("testdata/typical.config")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Parse(data).Last(KeyTaskIAMRole)
	}
}

// One Check as the daemon runs it on every event: read both files, judge
// every item.
func BenchmarkCheck(b *testing.B) {
	data, _ := os.ReadFile("testdata/proxy-quoted.config")
	c, _ := setup(b, string(data), "ECS_CLUSTER=base\n")
	c.Extra = map[string]string{"ECS_AWSVPC_BLOCK_IMDS": "true"}
	e := New(c)
	for b.Loop() {
		e.Check(context.Background())
	}
}
