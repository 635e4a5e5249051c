// Package packaging holds the tests of what make rpm, make deb and make
// release produce: versions (version.sh), RPM digests and signatures,
// changelogs, the man page and the packages' contents. The files it tests
// are the ones next to it; it has no code of its own.
package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func versionOf(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"version.sh"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("version.sh %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// version.sh maps git describe's output.
func TestVersionMapping(t *testing.T) {
	for describe, want := range map[string]string{
		"v1.2.3-0-gabc1234":        "1.2.3 1",
		"v1.2.3-0-gabc1234-dirty":  "1.2.4 0.0.gabc1234.dirty",
		"v1.2.3-4-gabc1234":        "1.2.4 0.4.gabc1234",
		"v1.2.9-42-gabc1234-dirty": "1.2.10 0.42.gabc1234.dirty",
		"v0.1.0-10-gdeadbee":       "0.1.1 0.10.gdeadbee",
		"1.0.0":                    "1.0.0 1",
		"v2.3.4":                   "2.3.4 1",
	} {
		if got := versionOf(t, nil, describe); got != want {
			t.Errorf("version.sh %s = %q, want %q", describe, got, want)
		}
	}
	if got := versionOf(t, []string{"RELEASE=7"}, "1.0.0"); got != "1.0.0 7" {
		t.Errorf("RELEASE=7 version.sh 1.0.0 = %q", got)
	}
	for _, bad := range []string{"1.0", "v1.2.3-rc1", "latest"} {
		if out, err := exec.Command("sh", "version.sh", bad).CombinedOutput(); err == nil || !strings.Contains(string(out), bad) {
			t.Errorf("version.sh %s: %v %q, want an error naming it", bad, err, out)
		}
	}
}

// Each version sorts after the one before it, for rpm and for dpkg: the
// releases of a tag, the snapshots after it, the dirty builds.
func TestVersionsSort(t *testing.T) {
	requireTools(t, "rpm", "dpkg")
	order := []string{
		"0.1.0-0.3.gaaaaaaa",  // no tag yet
		"0.1.0-0.45.gbbbbbbb", // more commits, still no tag
		"0.1.0-1",             // v0.1.0
		"0.1.1-0.0.gbbbbbbb.dirty",
		"0.1.1-0.1.gccccccc", // 1 commit after v0.1.0
		"0.1.1-0.2.gddddddd",
		"0.1.1-0.2.gddddddd.dirty",
		"0.1.1-0.10.geeeeeee", // 10 > 2, numerically
		"0.1.1-1",             // v0.1.1
		"0.1.2-0.1.gfffffff",
		"0.2.0-1",
		"0.10.0-1",
		"1.0.0-0.1.g0000000",
		"1.0.0-1",
	}
	for i := 0; i+1 < len(order); i++ {
		a, b := order[i], order[i+1]
		out, err := exec.Command("rpm", "--eval", `%{lua: print(rpm.vercmp("`+a+`","`+b+`"))}`).Output()
		if err != nil || strings.TrimSpace(string(out)) != "-1" {
			t.Errorf("rpm.vercmp(%s, %s) = %q (%v), want -1", a, b, strings.TrimSpace(string(out)), err)
		}
		if err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run(); err != nil {
			t.Errorf("dpkg --compare-versions %s lt %s: false", a, b)
		}
	}
}

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("ECS_REMEDIATOR_REQUIRE_NS") == "1" {
				t.Fatalf("needs %s (.ci/run installs it)", tool)
			}
			t.Skipf("needs %s", tool)
		}
	}
}

// git runs git in dir with a fixed identity and fails the test on error.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// make runs make in dir.
func makeIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-s", "--no-print-directory"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// cloneHead clones this checkout's HEAD commit into a temp dir (tags are
// made there, never here).
func cloneHead(t *testing.T) string {
	t.Helper()
	requireTools(t, "git", "make")
	root, _ := filepath.Abs("..")
	head := git(t, root, "rev-parse", "HEAD")
	dir := filepath.Join(t.TempDir(), "clone")
	git(t, root, "clone", "--quiet", "--shared", "--no-checkout", root, dir)
	git(t, dir, "checkout", "--quiet", head)
	for _, tag := range strings.Fields(git(t, dir, "tag")) {
		git(t, dir, "tag", "-d", tag)
	}
	return dir
}

// The version a checkout builds, from git alone: untagged, on a tag, after
// it, dirty; and the binary prints it.
func TestVersionFromGit(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: clones the repository and builds the binary")
	}
	dir := cloneHead(t)
	n := git(t, dir, "rev-list", "--count", "HEAD")
	h := git(t, dir, "rev-parse", "--short=7", "HEAD")
	if got, want := makeIn(t, dir, "version"), "0.1.0-0."+n+".g"+h; got != want {
		t.Errorf("untagged: make version = %q, want %q", got, want)
	}
	git(t, dir, "tag", "-a", "-m", "v0.1.0", "v0.1.0")
	if got := makeIn(t, dir, "version"); got != "0.1.0-1" {
		t.Errorf("on v0.1.0: make version = %q, want 0.1.0-1", got)
	}
	git(t, dir, "commit", "--quiet", "--allow-empty", "-m", "one more")
	h2 := git(t, dir, "rev-parse", "--short=7", "HEAD")
	want := "0.1.1-0.1.g" + h2
	if got := makeIn(t, dir, "version"); got != want {
		t.Errorf("one commit after v0.1.0: make version = %q, want %q", got, want)
	}
	makeIn(t, dir, "build")
	out, err := exec.Command(filepath.Join(dir, "bin/ecs-remediator"), "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), " "+want+" ") {
		t.Errorf("ecs-remediator version = %q (%v), want it to print %s", out, err, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := makeIn(t, dir, "version"); got != want+".dirty" {
		t.Errorf("with an uncommitted change: make version = %q, want %s.dirty", got, want)
	}
	if got := makeIn(t, dir, "version", "VERSION=2.0.0"); got != "2.0.0-1" {
		t.Errorf("make version VERSION=2.0.0 = %q, want 2.0.0-1", got)
	}
}
