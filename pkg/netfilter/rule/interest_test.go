package rule

import (
	"reflect"
	"testing"
)

func TestInterestOf(t *testing.T) {
	ws := []Want{
		{Table: "filter", Chain: "INPUT", Key: "k1", Needle: "127."},
		{Table: "filter", Chain: "DOCKER-USER", Key: "k2", Needle: "169.254.169.254", NewChain: true},
		{Table: "nat", Chain: "PREROUTING", Key: "k3", Needle: "169.254.170.2"},
		{Table: "raw", Chain: "PREROUTING", Key: "k4", Needle: "127."},
		{Table: "filter", Chain: "INPUT", Key: "k5", Needle: "51678"},
		{Table: "mangle", Chain: "ZZ", Key: "k6", Needle: "x"},
	}
	in := InterestOf(ws)
	want := []ChainRef{{"raw", "PREROUTING"}, {"nat", "PREROUTING"}, {"filter", "INPUT"}, {"filter", "FORWARD"}, {"filter", "DOCKER-USER"}, {"mangle", "ZZ"}}
	if !reflect.DeepEqual(in.Chains, want) {
		t.Errorf("Chains = %v, want %v", in.Chains, want)
	}
	if n := []string{"127.", "169.254.169.254", "169.254.170.2", "51678", "x"}; !reflect.DeepEqual(in.Needles, n) {
		t.Errorf("Needles = %q, want %q", in.Needles, n)
	}
	if !reflect.DeepEqual(in.NewChains, []string{"DOCKER-USER"}) {
		t.Errorf("NewChains = %q", in.NewChains)
	}
	if !in.Reads("filter", "FORWARD") || in.Reads("nat", "OUTPUT") {
		t.Error("Reads: FORWARD is read for DOCKER-USER's jump; nat OUTPUT is not wanted")
	}
	if got := in.OursIn("filter", "INPUT"); !reflect.DeepEqual(got, map[string]bool{"k1": true, "k5": true}) {
		t.Errorf("OursIn(filter, INPUT) = %v", got)
	}
	if got, again := in.ChainsKey(), InterestOf(ws).ChainsKey(); got != again || got == InterestOf(ws[:1]).ChainsKey() {
		t.Errorf("ChainsKey %q: not stable or not telling chains apart", got)
	}
}
