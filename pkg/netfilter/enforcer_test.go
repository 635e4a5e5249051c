package netfilter

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/saved"
	"github.com/ecs-remediator/ecs-remediator/pkg/reconcile"
)

var _ reconcile.Enforcer = (*Enforcer)(nil)

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"missing binary", Config{Iptables: "/nonexistent/iptables"}, "/nonexistent/iptables"},
		{"bad agent port", Config{Iptables: "/nonexistent/iptables", Credentials: true, AgentPort: 0}, "agent port 0"},
		{"bad introspection port", Config{BlockIntrospection: true, IntrospectionPort: 70000}, "introspection port 70000"},
		{"relative persist path", Config{Persist: &saved.Target{Path: "rules.v4"}}, "must be absolute"},
	} {
		if _, err := New(tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New() error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

// failingRunner stands in for a host where iptables cannot read the rules.
type failingRunner struct{}

func (failingRunner) Run(_ context.Context, _ []byte, name string, args ...string) ([]byte, error) {
	if len(args) == 1 && args[0] == "-V" {
		return []byte("iptables v1.8.9 (legacy)\n"), nil
	}
	return nil, &kernel.CmdError{Cmd: name, Err: errors.New("exit status 4"), Stderr: "iptables-legacy-save v1.8.9: Cannot initialize: Permission denied (you must be root)"}
}

func TestReadErrorIsReported(t *testing.T) {
	if !lookPath("iptables-legacy") || !lookPath("iptables-legacy-save") || !lookPath("iptables-legacy-restore") {
		t.Skip("needs iptables-legacy on PATH (apt-get install -y iptables)")
	}
	c := testConfig()
	c.Iptables = "iptables-legacy"
	c.ProcRoot = t.TempDir()
	c.ProcSys = c.ProcRoot // no net/ipv6 there: IPv4 only
	e, err := newEnforcer(c, failingRunner{}, textReader)
	if err != nil {
		t.Fatal(err)
	}
	fs, cs := e.Apply(context.Background(), false, nil)
	if len(cs) != 0 {
		t.Errorf("changes %+v", cs)
	}
	for _, item := range []string{ItemCredentialsDNAT, ItemCredentialsRedirect, ItemLocalhostGuard, ItemIntrospectionBlock} {
		f := findingOf(fs, item)
		if f.Status != finding.Error || !strings.Contains(f.Detail, "Permission denied") || !strings.Contains(f.Fix, "iptables-legacy-save") {
			t.Errorf("%s: %+v", item, f)
		}
	}
}
