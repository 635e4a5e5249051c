package path

import "testing"

// TestIptablesOwnedTablesSkipped: the tables iptables-nft made are read
// as iptables rules, never twice.
func TestIptablesOwnedTablesSkipped(t *testing.T) {
	js := `{"nftables":[{"table":{"family":"ip","name":"filter","handle":1}},{"chain":{"family":"ip","table":"filter","name":"INPUT","handle":1,"type":"filter","hook":"input","prio":0,"policy":"drop"}},` +
		`{"table":{"family":"ip","name":"filter2","handle":2}},{"chain":{"family":"ip","table":"filter2","name":"input","handle":1,"type":"filter","hook":"input","prio":10,"policy":"drop"}}]}`
	bs, err := ParseNft([]byte(js), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 || bs[0].Table != "filter2" {
		t.Errorf("bases %+v", bs)
	}
}
