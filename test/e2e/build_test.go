package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// artifacts are what the suite installs in the container.
type artifacts struct {
	Binary     string // ecs-remediator for this machine's architecture
	Credclient string // the stand-in agent and SDK client
	RPM        string // version RPMVersion
	RPMNext    string // version RPMNextVersion, for the upgrade
	RPMPrev    string // version RPMPrevVersion, built as releases before 0.1.0 were (nfpm)
	Deb        string // version RPMVersion
	DebNext    string // version RPMNextVersion, for the upgrade
}

const (
	RPMVersion     = "1.0.0"
	RPMNextVersion = "1.0.1"
	RPMPrevVersion = "0.9.0"
)

var (
	buildOnce sync.Once
	built     artifacts
	buildErr  error
	workDir   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if workDir != "" {
		os.RemoveAll(workDir)
	}
	os.Exit(code)
}

// repoRoot is the module root (the suite runs in test/e2e).
func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

// build makes the artifacts once per test binary: the daemon binary
// ($ECS_REMEDIATOR_E2E_BINARY, as `make e2e` passes, or go build), the
// credclient, two RPMs with packaging/rpm/build.sh (rpmbuild) and a deb with
// packaging/deb/build.sh (nfpm: $ECS_REMEDIATOR_E2E_NFPM, bin/nfpm, or nfpm
// on PATH).
func build(t *testing.T) artifacts {
	t.Helper()
	buildOnce.Do(func() { built, buildErr = doBuild(t) })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func doBuild(t *testing.T) (artifacts, error) {
	var a artifacts
	root := repoRoot()
	var err error
	workDir, err = os.MkdirTemp("", "ecs-remediator-e2e-")
	if err != nil {
		return a, err
	}
	goBuild := func(out, pkg string, ldflags string) error {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		}
		return nil
	}
	a.Binary = os.Getenv("ECS_REMEDIATOR_E2E_BINARY")
	if a.Binary == "" {
		a.Binary = filepath.Join(workDir, "ecs-remediator")
		if err := goBuild(a.Binary, "./cmd/ecs-remediator", "-s -w -X main.version=e2e"); err != nil {
			return a, fmt.Errorf("%v\n(the daemon does not build; the e2e suite needs it)", err)
		}
	}
	a.Credclient = filepath.Join(workDir, "credclient")
	if err := goBuild(a.Credclient, "./test/e2e/credclient", "-s -w"); err != nil {
		return a, err
	}

	nfpm := os.Getenv("ECS_REMEDIATOR_E2E_NFPM")
	if nfpm == "" {
		if _, err := os.Stat(filepath.Join(root, "bin/nfpm")); err == nil {
			nfpm = filepath.Join(root, "bin/nfpm")
		} else if p, err := exec.LookPath("nfpm"); err == nil {
			nfpm = p
		} else {
			return a, fmt.Errorf("nfpm not found: run `make nfpm` (installs the pinned nfpm into bin/) or `make e2e`")
		}
	}
	pkg := func(version, packager string) (string, error) {
		dir := filepath.Join(workDir, packager+"-"+version)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		// As `make rpm` and `make deb` build them (rpmbuild, nfpm).
		cmd := exec.Command("sh", "packaging/"+packager+"/build.sh", runtime.GOARCH, version, "1", a.Binary, dir)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "NFPM="+nfpm)
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%v (%s, %s): %v\n%s", cmd.Args, packager, version, err, b)
		}
		m, _ := filepath.Glob(filepath.Join(dir, "*."+packager))
		if len(m) != 1 {
			return "", fmt.Errorf("packaging/%s/build.sh made %d packages in %s, want 1", packager, len(m), dir)
		}
		return m[0], nil
	}
	if a.RPM, err = pkg(RPMVersion, "rpm"); err != nil {
		return a, err
	}
	if a.RPMNext, err = pkg(RPMNextVersion, "rpm"); err != nil {
		return a, err
	}
	// The previous release's RPM: nfpm with the old packaging.
	prev := filepath.Join(workDir, "rpm-"+RPMPrevVersion)
	if err := os.MkdirAll(prev, 0o755); err != nil {
		return a, err
	}
	cmd := exec.Command(nfpm, "package", "--config", "test/e2e/testdata/nfpm-previous.yaml", "--packager", "rpm", "--target", prev+"/")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "ARCH="+runtime.GOARCH, "VERSION="+RPMPrevVersion, "RELEASE=1", "BINARY="+a.Binary)
	if b, err := cmd.CombinedOutput(); err != nil {
		return a, fmt.Errorf("nfpm (the previous release's RPM): %v\n%s", err, b)
	}
	if m, _ := filepath.Glob(filepath.Join(prev, "*.rpm")); len(m) == 1 {
		a.RPMPrev = m[0]
	} else {
		return a, fmt.Errorf("nfpm made %d RPMs in %s, want 1", len(m), prev)
	}
	if a.Deb, err = pkg(RPMVersion, "deb"); err != nil {
		return a, err
	}
	if a.DebNext, err = pkg(RPMNextVersion, "deb"); err != nil {
		return a, err
	}
	return a, nil
}
