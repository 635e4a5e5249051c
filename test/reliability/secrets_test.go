package reliability

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
)

// The secrets of the host below; none may appear in any output.
var secrets = []string{
	"s3cretProxyPw",            // userinfo of HTTP_PROXY in ecs.config
	"QUJDREVGR0hJSktMTU5PUA==", // the auth of ECS_ENGINE_AUTH_DATA in the file
	"bmV3c2VjcmV0dmFsdWU=",     // the auth extra_settings wants instead
	"tok-1a2b3c4d5e",           // a *TOKEN* key's value
	"dr0pInSecret",             // userinfo of HTTPS_PROXY in the agent's drop-in
	"wJalrXUtnFEMI/K7MDENG",    // what the credentials endpoint answers
}

const secretConfig = "ECS_CLUSTER=prod\n" +
	"HTTP_PROXY=http://user:s3cretProxyPw@proxy.internal:3128\n" +
	`ECS_ENGINE_AUTH_DATA={"https://index.docker.io/v1/":{"auth":"QUJDREVGR0hJSktMTU5PUA==","email":"a@b.c"}}` + "\n" +
	"MY_API_TOKEN=tok-1a2b3c4d5e\n" +
	"ECS_ENABLE_TASK_IAM_ROLE=false\n"

// noSecret fails the test when out shows any secret.
func noSecret(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("%s shows the secret %q:\n%s", what, s, out)
		}
	}
}

// secretHost is a host whose ecs.config, drop-in and policy hold secrets,
// with drift in all of them, and whose credentials endpoint answers with a
// secret access key.
func secretHost(t *testing.T) host {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"code":"NoIdInRequest","AccessKeyId":"ASIA","SecretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	// The doctor section of the base policy points at port 9; this one
	// at the server above.
	h := newHost(t, secretConfig, func(p *policy.Policy) {
		p.ExtraSettings = map[string]string{"ECS_ENGINE_AUTH_DATA": `{"https://index.docker.io/v1/":{"auth":"bmV3c2VjcmV0dmFsdWU=","email":"a@b.c"}}`}
		p.Doctor.CredentialsURL = "http://" + ln.Addr().String() + "/v2/credentials/"
	})
	dropins := filepath.Join(h.dir, "ecs.service.d")
	os.MkdirAll(dropins, 0o755)
	if err := os.WriteFile(filepath.Join(dropins, "http-proxy.conf"),
		[]byte("[Service]\nEnvironment=\"HTTPS_PROXY=http://dropuser:dr0pInSecret@proxy.internal:3128\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// Secrets never printed: check (table and --json), apply --dry-run (the
// diff's context lines included), apply and its log lines (old, new,
// reason), doctor (table and --json) and the daemon's log and metrics.
func TestSecretsNeverPrinted(t *testing.T) {
	h := secretHost(t)
	for _, args := range [][]string{
		{"check"}, {"check", "--json"}, {"check", "--prometheus"},
		{"doctor", "--timeout", "500ms"}, {"doctor", "--json", "--timeout", "500ms"},
		{"apply", "--dry-run"},
	} {
		r := run(t, append(args, "--config", h.policy)...)
		noSecret(t, strings.Join(args, " "), r.stdout+r.stderr)
		if args[0] == "check" && args[len(args)-1] != "--prometheus" && (r.code != 1 || !strings.Contains(r.stdout, "<redacted, ")) {
			t.Errorf("%v: exit %d, want 1 (drift) with a redacted value shown:\n%s%s", args, r.code, r.stdout, r.stderr)
		}
		if args[0] == "apply" && (!strings.Contains(r.stdout, "+ECS_ENGINE_AUTH_DATA=<redacted, ") || !strings.Contains(r.stdout, " HTTP_PROXY=http://<redacted, ")) {
			t.Errorf("the dry-run diff does not show the redacted lines:\n%s", r.stdout)
		}
	}
	r := run(t, "apply", "--config", h.policy)
	noSecret(t, "apply", r.stdout+r.stderr)
	if r.code != 0 || !strings.Contains(r.stderr, `"old": "<redacted, `) {
		t.Errorf("apply: exit %d, want 0 and a change logged with a redacted old value:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(h.ecsConfig); !strings.Contains(string(b), "bmV3c2VjcmV0dmFsdWU=") {
		t.Fatalf("apply did not write the policy's value (redaction must touch output only):\n%s", b)
	}

	// The same repair logged as JSON (the journal's fields: old, new,
	// reason).
	writeAtomic(t, h.ecsConfig, secretConfig)
	r = run(t, "apply", "--log-format", "json", "--config", h.policy)
	noSecret(t, "apply --log-format json", r.stdout+r.stderr)
	if r.code != 0 || !strings.Contains(r.stderr, `"old":"<redacted, `) {
		t.Errorf("apply --log-format json: exit %d, want 0 and a redacted old value:\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The daemon repairs the same drift again: its log and metrics.
	writeAtomic(t, h.ecsConfig, secretConfig)
	port := freePort(t)
	h.writePolicy(t, func(p *policy.Policy) { p.Metrics.Listen = fmt.Sprintf("127.0.0.1:%d", port) })
	d := startDaemon(t, h.policy)
	d.waitUp(t)
	eventually(t, "the daemon repairs", d, func() bool {
		b, _ := os.ReadFile(h.ecsConfig)
		return strings.Contains(string(b), "bmV3c2VjcmV0dmFsdWU=") && strings.Contains(d.logs.String(), `"action": "rewrote line`)
	})
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	noSecret(t, "/metrics", string(body))
	prom, _ := os.ReadFile(filepath.Join(h.dir, "metrics/ecs_remediator.prom"))
	noSecret(t, "the metrics textfile", string(prom))
	d.stop(t)
	noSecret(t, "the daemon's log", d.logs.String())
	if !strings.Contains(d.logs.String(), `"old": "<redacted, `) {
		t.Errorf("the daemon's repair line shows no redacted value:\n%s", d.logs.String())
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
