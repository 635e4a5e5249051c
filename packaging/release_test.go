package packaging

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// run runs a command with env added and returns its combined output; it
// fails the test unless the command succeeds.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// throwawayKey makes an RSA signing key in a temporary GNUPGHOME and
// returns the armored secret key's file. The agent is stopped at the end.
func throwawayKey(t *testing.T) string {
	t.Helper()
	home, err := os.MkdirTemp("", "gpg") // short: the agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"GNUPGHOME=" + home}
	t.Cleanup(func() {
		runErr("", env, "gpgconf", "--kill", "all")
		os.RemoveAll(home)
	})
	os.Chmod(home, 0o700)
	run(t, "", env, "gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key",
		"ecs-remediator release test <release-test@example.invalid>", "rsa2048", "sign", "never")
	key := filepath.Join(t.TempDir(), "release-key.asc")
	secret := run(t, "", env, "gpg", "--batch", "--armor", "--export-secret-keys")
	if err := os.WriteFile(key, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	return key
}

// debFile returns one file of a deb's data, gunzipped when it ends in .gz.
func debFile(t *testing.T, deb, path string) string {
	t.Helper()
	dir := t.TempDir()
	run(t, "", nil, "dpkg-deb", "-x", deb, dir)
	b, err := os.ReadFile(filepath.Join(dir, path))
	if err != nil {
		t.Fatalf("%s in %s: %v", path, deb, err)
	}
	if strings.HasSuffix(path, ".gz") {
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
	}
	return string(b)
}

// make release, in a clone of this commit, with a throw-away key: both
// packages for both architectures, SHA256SUMS and its signature, signed
// RPMs that rpm verifies with the imported key (and whose SHA-1 and MD5
// digests rpm 4.11 checks), the changelog and the man page in both
// packages, the package metadata, and lintian and rpmlint clean but for the
// tags packaging/deb/lintian-overrides and packaging/rpm/rpmlint.toml
// explain.
func TestMakeRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds both packages for both architectures")
	}
	requireTools(t, "git", "make", "rpm", "rpmbuild", "rpmsign", "gpg", "gpgconf", "dpkg-deb", "sha256sum", "lintian", "rpmlint")
	key := throwawayKey(t)
	dir := cloneHead(t)
	out := run(t, dir, []string{"RELEASE_GPG_KEY=" + key}, "make", "--no-print-directory", "release")
	if !strings.Contains(out, "release: signed 2 RPMs and SHA256SUMS") {
		t.Errorf("make release did not say it signed:\n%s", out)
	}
	vr := makeIn(t, dir, "version")
	v, r, _ := strings.Cut(vr, "-")
	dist := filepath.Join(dir, "dist")
	rpms := map[string]string{"x86_64": "ecs-remediator-" + vr + ".x86_64.rpm", "aarch64": "ecs-remediator-" + vr + ".aarch64.rpm"}
	debs := map[string]string{"amd64": "ecs-remediator_" + vr + "_amd64.deb", "arm64": "ecs-remediator_" + vr + "_arm64.deb"}
	var want []string
	for _, f := range rpms {
		want = append(want, f)
	}
	for _, f := range debs {
		want = append(want, f)
	}
	for _, f := range append(want, "SHA256SUMS", "SHA256SUMS.asc", "RPM-GPG-KEY-ecs-remediator") {
		if _, err := os.Stat(filepath.Join(dist, f)); err != nil {
			t.Errorf("dist/ lacks %s: %v", f, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The checksums and their signature, verified with the public key only.
	sums := run(t, dist, nil, "sha256sum", "-c", "SHA256SUMS")
	for _, f := range want {
		if !strings.Contains(sums, f+": OK") {
			t.Errorf("sha256sum -c SHA256SUMS does not check %s:\n%s", f, sums)
		}
	}
	verifier, _ := os.MkdirTemp("", "gpg")
	venv := []string{"GNUPGHOME=" + verifier}
	defer func() { runErr("", venv, "gpgconf", "--kill", "all"); os.RemoveAll(verifier) }()
	os.Chmod(verifier, 0o700)
	run(t, "", venv, "gpg", "--batch", "--quiet", "--import", filepath.Join(dist, "RPM-GPG-KEY-ecs-remediator"))
	if out, err := runErr(dist, venv, "gpg", "--batch", "--verify", "SHA256SUMS.asc", "SHA256SUMS"); err != nil || !strings.Contains(out, "Good signature") {
		t.Errorf("gpg --verify SHA256SUMS.asc: %v\n%s", err, out)
	}
	tampered := filepath.Join(t.TempDir(), "SHA256SUMS")
	b, _ := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	os.WriteFile(tampered, append(b, []byte("0000  evil.rpm\n")...), 0o644)
	if out, err := runErr(dist, venv, "gpg", "--batch", "--verify", "SHA256SUMS.asc", tampered); err == nil {
		t.Errorf("gpg --verify passes a changed SHA256SUMS:\n%s", out)
	}

	// The RPMs' signatures, with the key imported into a private rpm db.
	db := t.TempDir()
	run(t, "", nil, "rpm", "--dbpath", db, "--import", filepath.Join(dist, "RPM-GPG-KEY-ecs-remediator"))
	for arch, f := range rpms {
		p := filepath.Join(dist, f)
		out := run(t, "", nil, "rpm", "--dbpath", db, "-Kv", p)
		for _, line := range []string{"Header V4 RSA/SHA256 Signature, key ID", "Header SHA1 digest: OK", "MD5 digest: OK"} {
			if !strings.Contains(out, line) {
				t.Errorf("%s: rpm -Kv does not say %q:\n%s", f, line, out)
			}
		}
		// v4 header signature, and the v3 header+payload one rpm 4.11 checks.
		if n := len(regexp.MustCompile(`(?m)V4 RSA/SHA256 Signature, key ID [0-9a-f]+: OK$`).FindAllString(out, -1)); n != 2 {
			t.Errorf("%s: %d good RSA signatures, want 2 (header; header and payload):\n%s", f, n, out)
		}
		if strings.Contains(out, "NOKEY") || strings.Contains(out, "BAD") {
			t.Errorf("%s: rpm -Kv:\n%s", f, out)
		}
		data, _ := os.ReadFile(p)
		data[len(data)-200] ^= 0xff
		bad := filepath.Join(t.TempDir(), f)
		os.WriteFile(bad, data, 0o644)
		if out, err := runErr("", nil, "rpm", "--dbpath", db, "-Kv", bad); err == nil || !strings.Contains(out, "BAD") {
			t.Errorf("a corrupted copy of %s passes rpm -K: %v\n%s", f, err, out)
		}
		q := func(format string) string {
			return run(t, "", nil, "rpm", "--dbpath", db, "-qp", "--qf", format, p)
		}
		if got := q("%{VERSION}-%{RELEASE} %{ARCH}"); got != v+"-"+r+" "+arch {
			t.Errorf("%s is %q, want %s-%s %s", f, got, v, r, arch)
		}
		if s := q("%{SUMMARY}"); len(s) >= 80 || s == "" {
			t.Errorf("%s: summary %q (%d characters, want under 80)", f, s, len(s))
		}
		if rec := q("[%{RECOMMENDNAME}\n]"); !strings.Contains(rec, "iptables-services") {
			t.Errorf("%s recommends %q, want iptables-services", f, rec)
		}
		flags := q("[%{FILENAMES} %{FILEFLAGS:fflags}\n]")
		for _, want := range []string{"/usr/share/licenses/ecs-remediator/LICENSE l", "/usr/share/doc/ecs-remediator/README.md d",
			"/usr/share/doc/ecs-remediator/docs/daemon.md d",
			"/etc/ecs-remediator/config.yaml cn", "/usr/share/man/man8/ecs-remediator.8.gz "} {
			if !strings.Contains(flags, want) {
				t.Errorf("%s: no %q in its files (%%license, %%doc, %%config(noreplace), the man page):\n%s", f, want, flags)
			}
		}
		cl := run(t, "", nil, "rpm", "--dbpath", db, "-qp", "--changelog", p)
		if first := strings.SplitN(cl, "\n", 2)[0]; !strings.HasSuffix(first, " - "+vr) {
			t.Errorf("%s: the newest %%changelog entry is %q, want one for %s", f, first, vr)
		}
		// CHANGELOG.md has no release yet: one entry, this build's, with
		// every Unreleased item (the first and the last group's).
		if n := strings.Count("\n"+cl, "\n* "); n != 1 || !strings.Contains(cl, "`docker.no_proxy`") || !strings.Contains(cl, `"status": "warn"`) || !strings.Contains(cl, "Fixed: A deletion") {
			t.Errorf("%s: %%changelog is not CHANGELOG.md's Unreleased items as one entry (%d entries):\n%s", f, n, cl)
		}
	}

	for arch, f := range debs {
		p := filepath.Join(dist, f)
		if got := strings.TrimSpace(run(t, "", nil, "dpkg-deb", "-f", p, "Version")); got != vr {
			t.Errorf("%s: Version %s, want %s", f, got, vr)
		}
		if got := strings.TrimSpace(run(t, "", nil, "dpkg-deb", "-f", p, "Architecture")); got != arch {
			t.Errorf("%s: Architecture %s", f, got)
		}
		if got := strings.TrimSpace(run(t, "", nil, "dpkg-deb", "-f", p, "Recommends")); got != "iptables-persistent" {
			t.Errorf("%s: Recommends %q, want iptables-persistent", f, got)
		}
		cl := debFile(t, p, "usr/share/doc/ecs-remediator/changelog.Debian.gz")
		if !strings.HasPrefix(cl, "ecs-remediator ("+vr+") ") || strings.Count(cl, "; urgency=medium") != 1 || !strings.Contains(cl, "`docker.no_proxy`") || !strings.Contains(cl, `"status": "warn"`) {
			t.Errorf("%s: changelog.Debian.gz is not CHANGELOG.md for %s:\n%.600s", f, vr, cl)
		}
		if man := debFile(t, p, "usr/share/man/man8/ecs-remediator.8.gz"); !strings.HasPrefix(man, ".TH ECS-REMEDIATOR 8 ") || !strings.Contains(man, ".SS check\n") || !strings.Contains(man, "POLICY FILE") {
			t.Errorf("%s: the man page is not ecs-remediator __man's:\n%.300s", f, man)
		}
		if d := debFile(t, p, "usr/share/doc/ecs-remediator/docs/daemon.md"); !strings.HasPrefix(d, "# ") {
			t.Errorf("%s: docs/daemon.md is not installed under /usr/share/doc/ecs-remediator/docs (README.md links there):\n%.200s", f, d)
		}
		if c := debFile(t, p, "usr/share/doc/ecs-remediator/copyright"); !strings.HasPrefix(c, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/") {
			t.Errorf("%s: no machine-readable copyright file", f)
		}
	}

	// Linters: nothing but the explained tags.
	lint, _ := runErr(dist, nil, "lintian", "--no-cfg", "--pedantic", "-I", "-E", debs["amd64"], debs["arm64"])
	for _, line := range strings.Split(lint, "\n") {
		if regexp.MustCompile(`^[EWIPX]: `).MatchString(line) {
			t.Errorf("lintian: %s (fix it, or explain it in packaging/deb/lintian-overrides)", line)
		}
	}
	rl, err := runErr(dist, nil, "rpmlint", "-c", filepath.Join(dir, "packaging/rpm/rpmlint.toml"), rpms["x86_64"], rpms["aarch64"])
	if err != nil || !strings.Contains(rl, "0 errors, 0 warnings") {
		t.Errorf("rpmlint (fix it, or explain the tag in packaging/rpm/rpmlint.toml): %v\n%s", err, rl)
	}

	// Without a key: the same dist, checksums only.
	plain := t.TempDir()
	for _, f := range want {
		b, _ := os.ReadFile(filepath.Join(dist, f))
		os.WriteFile(filepath.Join(plain, f), b, 0o644)
	}
	out = run(t, dir, nil, "sh", "packaging/release.sh", plain)
	if !strings.Contains(out, "unsigned") {
		t.Errorf("release.sh without RELEASE_GPG_KEY: %s", out)
	}
	if _, err := os.Stat(filepath.Join(plain, "SHA256SUMS.asc")); err == nil {
		t.Error("release.sh without a key wrote SHA256SUMS.asc")
	}
	if _, err := os.Stat(filepath.Join(plain, "SHA256SUMS")); err != nil {
		t.Error("release.sh without a key wrote no SHA256SUMS")
	}
}
