package metrics

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestWriteTextGolden(t *testing.T) {
	findings := []finding.Finding{
		f("ecs_config.ECS_ENABLE_TASK_IAM_ROLE", finding.OK),
		f("ecs_config.ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST", finding.Drift),
		f("ecs_config.NO_PROXY", finding.OK),
		{Item: "network.localhost_guard", Status: finding.Warn},
		f("network.credentials_dnat", finding.Error),
		f("sysctl.route_localnet", finding.OK),
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, findings); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "writetext.prom")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("WriteText output differs from %s:\n%s", golden, buf.Bytes())
	}
	mfs := parse(t, bytes.NewReader(buf.Bytes()))
	if len(mfs) != 1 {
		t.Errorf("WriteText wrote %d families, want only %s", len(mfs), NameItemCompliant)
	}
	for _, fd := range findings {
		want := 0.0
		if fd.Status == finding.OK || fd.Status == finding.Warn {
			want = 1
		}
		if v := value(t, mfs, NameItemCompliant, "item", fd.Item); v != want {
			t.Errorf("%s (%s) = %v, want %v", fd.Item, fd.Status, v, want)
		}
	}
}

func TestWriteTextMatchesDaemonGauges(t *testing.T) {
	findings := []finding.Finding{f(iamRole, finding.Drift), f(natRule, finding.OK)}
	var buf bytes.Buffer
	if err := WriteText(&buf, findings); err != nil {
		t.Fatal(err)
	}
	m := New(Config{})
	m.Observe(findings, nil, 0, t0)
	var daemon bytes.Buffer
	if err := writeFamilies(&daemon, m.reg); err != nil {
		t.Fatal(err)
	}
	one := parse(t, &buf)[NameItemCompliant]
	two := parse(t, &daemon)[NameItemCompliant]
	if a, b := canonical(t, map[string]*dto.MetricFamily{NameItemCompliant: one}), canonical(t, map[string]*dto.MetricFamily{NameItemCompliant: two}); a != b {
		t.Errorf("check --prometheus and the daemon disagree:\n%s\nvs\n%s", a, b)
	}
}
