package nspawn

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// tools are what Boot needs on the host.
var tools = map[string]string{
	"systemd-nspawn": "systemd-container",
	"nsenter":        "util-linux",
	"cp":             "coreutils",
}

// Require skips the test unless the end-to-end suite was asked for
// (ECS_REMEDIATOR_E2E=1, as `make e2e` sets: it takes minutes and builds a
// rootfs, so a plain `go test ./...` leaves it out). Then it skips (or fails,
// when ECS_REMEDIATOR_REQUIRE_NS=1) when this machine cannot boot a
// container: not root, or a tool missing.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv("ECS_REMEDIATOR_E2E") != "1" {
		t.Skip("end-to-end container test: run it with make e2e (or ECS_REMEDIATOR_E2E=1 go test ./test/...)")
	}
	var bins []string
	for b := range tools {
		bins = append(bins, b)
	}
	requireBinaries(t, bins...)
}

func requireBinaries(t testing.TB, bins ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (systemd-nspawn and debootstrap need it)")
	}
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			pkg := tools[b]
			if pkg == "" {
				pkg = b
			}
			missing = append(missing, b+" (apt-get install -y "+pkg+")")
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "end-to-end container tests need " + strings.Join(missing, ", ")
	if os.Getenv("ECS_REMEDIATOR_REQUIRE_NS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
