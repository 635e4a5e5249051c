// Package aemm runs AWS's IMDS simulator, amazon-ec2-metadata-mock, for
// tests: the real peer that doctor's IMDS checks talk to.
package aemm

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const aemmInstall = "GOBIN=$(go env GOPATH)/bin go install github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock@v1.13.0"

// Find finds AWS's IMDS simulator on PATH or in $(go env GOPATH)/bin.
// Missing, the test skips with the install command (or fails when
// ECS_REMEDIATOR_REQUIRE_NS=1, as in CI).
func Find(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("ec2-metadata-mock"); err == nil {
		return p
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, d := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(d, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "ec2-metadata-mock")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	msg := "needs ec2-metadata-mock (AWS's IMDS simulator): " + aemmInstall
	if os.Getenv("ECS_REMEDIATOR_REQUIRE_NS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start runs ec2-metadata-mock on a free 127.0.0.1 port with the given
// JSON config ("" for its defaults) and extra flags, waits until it
// answers, and stops it when the test ends. It returns the endpoint URL.
func Start(t testing.TB, config string, flags ...string) string {
	t.Helper()
	bin := Find(t)
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken meanwhile
		port := FreePort(t)
		args := []string{"-n", "127.0.0.1", "-p", strconv.Itoa(port)}
		if config != "" {
			cfg := filepath.Join(dir, "aemm-config.json")
			if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "-c", cfg)
		}
		args = append(args, flags...)
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+dir) // keep it from reading a config in the real $HOME
		logf, err := os.Create(filepath.Join(dir, "aemm.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		url := "http://127.0.0.1:" + strconv.Itoa(port)
		err = waitAnswers(url, exited)
		if err == nil {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
				logf.Close()
			})
			return url
		}
		_ = cmd.Process.Kill()
		logf.Close()
		log, _ := os.ReadFile(filepath.Join(dir, "aemm.log"))
		lastErr = fmt.Errorf("%w\n%s", err, log)
	}
	t.Fatalf("ec2-metadata-mock did not come up: %v", lastErr)
	return ""
}

// waitAnswers polls until the mock answers the token path (any HTTP
// status) or the process exits.
func waitAnswers(url string, exited <-chan error) error {
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("ec2-metadata-mock exited: %v", err)
		default:
		}
		req, _ := http.NewRequest(http.MethodPut, url+"/latest/api/token", nil)
		req.Header.Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "60")
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no answer at %s", url)
}
