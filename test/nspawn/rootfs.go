package nspawn

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Suite is the Debian release the rootfs is built from.
const Suite = "bookworm"

// Packages are what the rootfs holds on top of debootstrap's minbase:
// systemd and the system bus to boot, iptables with iptables-persistent
// (netfilter-persistent restores /etc/iptables/rules.v4 at boot, as on a
// Debian/Ubuntu custom AMI), procps, iproute2 for the link-local route, and
// rpm to install the package under test for real.
var Packages = []string{"systemd", "dbus", "iptables", "iptables-persistent", "procps", "iproute2", "rpm"}

// CacheDir is where built root file systems are kept between runs:
// $ECS_REMEDIATOR_E2E_CACHE, or /var/cache/ecs-remediator-e2e.
func CacheDir() string {
	if d := os.Getenv("ECS_REMEDIATOR_E2E_CACHE"); d != "" {
		return d
	}
	return "/var/cache/ecs-remediator-e2e"
}

// Variant is one kind of cached root file system: the packages on top of
// debootstrap's minbase, and what to do to the tree once it is built.
type Variant struct {
	Name     string // "" for the base variant (its cache key predates variants)
	Packages []string
	// Setup runs once on the freshly built tree, after the common prepare.
	Setup func(root string) error
}

// Base is the rootfs of the RPM scenarios: Packages.
var Base = Variant{Packages: Packages}

// Docker adds Debian's docker.io (dockerd, containerd, runc; iptables
// chains of its own) and busybox-static (its httpd serves the peers of the
// Docker scenario).
// The Docker units are disabled, so a boot does not start Docker before the
// test sets the host up. Boot it with Options{Docker: true}.
var Docker = Variant{
	Name:     "docker",
	Packages: append(append([]string{}, Packages...), "docker.io", "busybox-static"),
	Setup: func(root string) error {
		out, err := exec.Command("chroot", root, "systemctl", "disable", "docker.service", "docker.socket", "containerd.service").CombinedOutput()
		if err != nil {
			return fmt.Errorf("chroot %s systemctl disable docker: %v\n%s", root, err, out)
		}
		return nil
	},
}

// cacheKey changes whenever what goes into the rootfs changes, so a stale
// cache is never reused.
func (v Variant) cacheKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s %s v2", Suite, runtime.GOARCH, strings.Join(v.Packages, ","))
	name := Suite + "-" + runtime.GOARCH + "-"
	if v.Name != "" {
		name += v.Name + "-"
	}
	return name + hex.EncodeToString(h.Sum(nil))[:12]
}

// Rootfs returns the cached pristine base root file system, building it
// with debootstrap (about 2 minutes) when it is not there yet. Callers never
// boot it: NewRoot gives each boot a fresh copy. Concurrent test
// processes wait for one another on a lock file.
func Rootfs(t testing.TB) string { return RootfsOf(t, Base) }

// RootfsOf is Rootfs for a variant.
func RootfsOf(t testing.TB, v Variant) string {
	t.Helper()
	Require(t)
	cache := CacheDir()
	dir := filepath.Join(cache, v.cacheKey())
	if complete(dir) {
		return dir
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatalf("create the rootfs cache %s: %v (set ECS_REMEDIATOR_E2E_CACHE to a writable directory)", cache, err)
	}
	lock, err := os.OpenFile(filepath.Join(cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("open the rootfs cache lock: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("lock the rootfs cache %s: %v", cache, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if complete(dir) { // another process built it while we waited
		return dir
	}
	requireBinaries(t, "debootstrap")
	tmp := dir + ".building"
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatalf("remove a half-built rootfs %s: %v", tmp, err)
	}
	mirror := Mirror()
	t.Logf("building the %s rootfs with debootstrap from %s into %s (about 2 minutes, once)", Suite, mirror, dir)
	args := []string{"--variant=minbase", "--include=" + strings.Join(v.Packages, ","), Suite, tmp, mirror}
	cmd := exec.Command("debootstrap", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debootstrap %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 40))
	}
	if err := prepare(tmp); err != nil {
		t.Fatalf("prepare the rootfs %s: %v", tmp, err)
	}
	if v.Setup != nil {
		if err := v.Setup(tmp); err != nil {
			t.Fatalf("set up the %s rootfs %s: %v", v.Name, tmp, err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".ecs-remediator-e2e-complete"), []byte(v.cacheKey()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatalf("move the built rootfs into the cache: %v", err)
	}
	return dir
}

func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ".ecs-remediator-e2e-complete"))
	return err == nil
}

// prepare makes the debootstrapped tree boot the same way every time:
// empty saved rulesets (the iptables-persistent postinst saved whatever the
// build machine had), no apt caches, a fixed hostname.
func prepare(root string) error {
	for _, f := range []string{"etc/iptables/rules.v4", "etc/iptables/rules.v6"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o640); err != nil {
			return err
		}
	}
	for _, glob := range []string{"var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_Packages"} {
		matches, _ := filepath.Glob(filepath.Join(root, glob))
		for _, m := range matches {
			os.Remove(m)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("e2e\n"), 0o644); err != nil {
		return err
	}
	// An empty machine-id makes systemd generate a fresh one at each boot
	// of a copy, which is what a new instance sees.
	return os.WriteFile(filepath.Join(root, "etc/machine-id"), nil, 0o444)
}

// Mirror is the Debian mirror debootstrap uses: $ECS_REMEDIATOR_E2E_MIRROR,
// else the one apt on this machine already uses, else deb.debian.org.
func Mirror() string {
	if m := os.Getenv("ECS_REMEDIATOR_E2E_MIRROR"); m != "" {
		return m
	}
	if f, err := os.Open("/etc/apt/sources.list.d/debian.sources"); err == nil {
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			if v, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "URIs:"); ok {
				if fs := strings.Fields(v); len(fs) > 0 && !strings.Contains(fs[0], "security") {
					return fs[0]
				}
			}
		}
	}
	if data, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			fs := strings.Fields(line)
			if len(fs) >= 3 && fs[0] == "deb" && !strings.Contains(fs[1], "security") {
				return fs[1]
			}
		}
	}
	return "http://deb.debian.org/debian"
}

// NewRoot gives one test its own copy of the cached rootfs, removed when the
// test ends. cp -a of the tree takes about a second.
func NewRoot(t testing.TB) string { return NewRootOf(t, Base) }

// NewRootOf is NewRoot for a variant.
func NewRootOf(t testing.TB, v Variant) string {
	t.Helper()
	src := RootfsOf(t, v)
	base := os.Getenv("ECS_REMEDIATOR_E2E_WORKDIR")
	if base == "" {
		base = filepath.Join(CacheDir(), "boots")
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	removeStale(base)
	dir, err := os.MkdirTemp(base, "root-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("ECS_REMEDIATOR_E2E_KEEP") == "1" {
			t.Logf("kept the container root %s (ECS_REMEDIATOR_E2E_KEEP=1)", dir)
			return
		}
		os.RemoveAll(dir)
	})
	if out, err := exec.Command("cp", "-a", "--reflink=auto", src+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy the rootfs %s to %s: %v\n%s", src, dir, err, out)
	}
	return dir
}

// removeStale deletes copies left behind by runs that were killed before
// their cleanup (older than a day; a running suite's copies are minutes old).
func removeStale(base string) {
	ents, _ := os.ReadDir(base)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "root-") {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
			os.RemoveAll(filepath.Join(base, e.Name()))
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
