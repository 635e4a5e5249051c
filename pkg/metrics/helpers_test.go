package metrics

import (
	"io"
	"os"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// parse reads r with Prometheus' own text parser, as node_exporter and the
// Prometheus server do.
func parse(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("Prometheus text parser refused the output: %v", err)
	}
	return mfs
}

func parseFile(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return parse(t, f)
}

// sample finds the sample of family name whose labels include want; ok is
// false when there is none.
func sample(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (*dto.Metric, bool) {
	mf, ok := mfs[name]
	if !ok {
		return nil, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m, true
	}
	return nil, false
}

// value is the gauge, counter or untyped value of one sample; it fails the
// test when the sample is missing.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	m, ok := sample(mfs, name, want)
	if !ok {
		t.Fatalf("no sample %s%v in the output", name, want)
	}
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	t.Fatalf("%s%v is neither gauge nor counter", name, want)
	return 0
}

// canonical re-encodes parsed families in name order, to compare two
// expositions by content.
func canonical(t *testing.T, mfs map[string]*dto.MetricFamily) string {
	t.Helper()
	names := make([]string, 0, len(mfs))
	for n := range mfs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		if _, err := expfmt.MetricFamilyToText(&b, mfs[n]); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func f(item string, st finding.Status) finding.Finding {
	return finding.Finding{Item: item, Status: st, Detail: "detail of " + item}
}
