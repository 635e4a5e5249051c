package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildRPM builds an RPM with packaging/rpm/build.sh around a stand-in
// binary (the digests do not care what it is).
func buildRPM(t *testing.T, arch, version, release string, extra ...string) string {
	t.Helper()
	requireTools(t, "rpmbuild", "rpm")
	dir := t.TempDir()
	bin := filepath.Join(dir, "ecs-remediator")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho stand-in\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", append([]string{"rpm/build.sh", arch, version, release, bin, filepath.Join(dir, "out")}, extra...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("rpm/build.sh: %v\n%s", err, out)
	}
	lines := strings.Fields(string(out))
	return lines[len(lines)-1]
}

func rpmK(path string) (string, error) {
	out, err := exec.Command("rpm", "-Kv", path).CombinedOutput()
	return string(out), err
}

// rpm 4.11 (Amazon Linux 2) checks the header SHA-1 and the MD5 of header
// and payload, not SHA-256: the packages carry both, and a corrupted copy
// fails them. Payload and dependencies stay within what rpm 4.11 reads.
func TestRPMDigestsRPM411Verifies(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			rpm := buildRPM(t, arch, "1.2.3", "1")
			out, err := rpmK(rpm)
			if err != nil {
				t.Fatalf("rpm -Kv: %v\n%s", err, out)
			}
			for _, want := range []string{"Header SHA1 digest: OK", "MD5 digest: OK", "Header SHA256 digest: OK", "Payload SHA256 digest: OK"} {
				if !strings.Contains(out, want) {
					t.Errorf("rpm -Kv does not say %q:\n%s", want, out)
				}
			}
			data, err := os.ReadFile(rpm)
			if err != nil {
				t.Fatal(err)
			}
			corrupt := func(name string, at int) {
				c := append([]byte(nil), data...)
				c[at] ^= 0xff
				p := filepath.Join(t.TempDir(), name+".rpm")
				os.WriteFile(p, c, 0o644)
				out, err := rpmK(p)
				if err == nil {
					t.Errorf("rpm -K passes a copy with a corrupted %s:\n%s", name, out)
				}
				if !strings.Contains(out, "MD5 digest: BAD") {
					t.Errorf("with a corrupted %s, rpm -Kv does not say the MD5 digest (the one rpm 4.11 checks) is BAD:\n%s", name, out)
				}
				if name == "header" && !strings.Contains(out, "Header SHA1 digest: BAD") {
					t.Errorf("with a corrupted header, rpm -Kv does not say Header SHA1 digest: BAD:\n%s", out)
				}
			}
			corrupt("payload", len(data)-100)
			if i := bytes.Index(data, []byte("Keeps ECS container instances")); i > 0 {
				corrupt("header", i)
			} else {
				t.Error("the summary is not in the RPM header")
			}

			q := func(format string) string {
				out, err := exec.Command("rpm", "-qp", "--qf", format, rpm).Output()
				if err != nil {
					t.Fatalf("rpm -qp --qf %s: %v", format, err)
				}
				return string(out)
			}
			if c := q("%{PAYLOADCOMPRESSOR}"); c != "gzip" {
				t.Errorf("payload compressor %q: rpm 4.11 reads gzip, xz, bzip2, lzma", c)
			}
			// rpmlib features of rpm 4.11 (rpmlibProvides in lib/rpmds.c).
			known := "CompressedFileNames FileDigests PayloadFilesHavePrefix PayloadIsBzip2 PayloadIsXz PayloadIsLzma " +
				"HeaderLoadSortsTags ScriptletInterpreterArgs PartialHardlinkSets ExplicitPackageProvide VersionedDependencies " +
				"ConcurrentAccess BuiltinLuaScripts FileCaps TildeInVersions"
			for _, req := range strings.Split(q("[%{REQUIRENAME}\n]"), "\n") {
				if name, ok := strings.CutPrefix(req, "rpmlib("); ok {
					if !strings.Contains(" "+known+" ", " "+strings.TrimSuffix(name, ")")+" ") {
						t.Errorf("the RPM requires %s, which rpm 4.11 does not provide", req)
					}
				}
			}
			if got, want := q("%{ARCH}"), map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[arch]; got != want {
				t.Errorf("arch %s, want %s", got, want)
			}
		})
	}
}
