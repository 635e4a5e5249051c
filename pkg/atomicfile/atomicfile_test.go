package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// Regression: a process killed between creating its temp file and the
// rename left ".<name>.ecs-remediator-tmp-*" behind, and every further
// kill added one more (a 900 KiB ecs.config each, found by
// test/reliability's kill loop). The next write now removes the temp files
// no live process holds; one a live writer holds (locked) is left alone,
// and so is everything else in the directory.
func TestReplaceRemovesTempFilesOfKilledWriters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ecs.config")
	os.WriteFile(path, []byte("old\n"), 0o640)

	// What a SIGKILL leaves: a named temp file that nobody locks.
	for _, n := range []string{".ecs.config.ecs-remediator-tmp-111", ".ecs.config.ecs-remediator-tmp-222"} {
		os.WriteFile(filepath.Join(dir, n), []byte("partial"), 0o600)
	}
	// A live writer's temp file: open and locked.
	live := filepath.Join(dir, ".ecs.config.ecs-remediator-tmp-333")
	lf, err := os.Create(live)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	// Not ours to touch: another file's temp, a symlink with our prefix.
	other := filepath.Join(dir, ".other.ecs-remediator-tmp-444")
	os.WriteFile(other, nil, 0o600)
	outside := filepath.Join(t.TempDir(), "precious")
	os.WriteFile(outside, []byte("keep"), 0o600)
	link := filepath.Join(dir, ".ecs.config.ecs-remediator-tmp-555")
	os.Symlink(outside, link)

	if err := Replace(path, []byte("new\n"), Options{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new\n" {
		t.Fatalf("content %q", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	got := strings.Join(names(t, dir), " ")
	want := ".ecs.config.ecs-remediator-tmp-333 .ecs.config.ecs-remediator-tmp-555 .other.ecs-remediator-tmp-444 ecs.config"
	if got != want {
		t.Fatalf("directory after Replace:\n%s\nwant\n%s", got, want)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Fatal("followed a symlink")
	}
	// Once its writer is gone (the lock released), it is stale too.
	lf.Close()
	RemoveStale(path)
	if _, err := os.Lstat(live); !os.IsNotExist(err) {
		t.Fatalf("stale temp file kept after its writer ended: %v", err)
	}
}

// BackupOnce cleans up a killed backup's temp file even when the backup
// itself already exists (and is kept).
func TestBackupOnceRemovesTempFilesOfKilledWriters(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "ecs.config"), filepath.Join(dir, "ecs.config.orig")
	os.WriteFile(src, []byte("now\n"), 0o644)
	os.WriteFile(dst, []byte("first\n"), 0o644)
	stale := filepath.Join(dir, ".ecs.config.orig.ecs-remediator-tmp-1")
	os.WriteFile(stale, []byte("fir"), 0o600)
	made, err := BackupOnce([]byte("now\n"), nil, dst)
	if err != nil || made {
		t.Fatalf("made=%v err=%v", made, err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "first\n" {
		t.Fatalf("backup overwritten: %q", b)
	}
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Fatal("stale backup temp file kept")
	}
	// A fresh backup leaves no temp file either.
	os.Remove(dst)
	if made, err := BackupOnce([]byte("now\n"), nil, dst); err != nil || !made {
		t.Fatalf("made=%v err=%v", made, err)
	}
	if got := strings.Join(names(t, dir), " "); got != "ecs.config ecs.config.orig" {
		t.Fatalf("directory: %s", got)
	}
}

// Regression: ecsconfig checked that ecs.config still held what it had
// judged, then wrote, fsynced and renamed: an operator's file renamed into
// place during that fsync was overwritten (test/reliability saw the
// operator's ecs.config replaced by a freshly created one). Unchanged is
// now asked after the fsync, right before the new file takes the old one's
// place, and Create never replaces a file that appeared meanwhile.
func TestReplaceRaces(t *testing.T) {
	t.Run("changed before the rename", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ecs.config")
		os.WriteFile(path, []byte("judged\n"), 0o644)
		errEdited := os.ErrInvalid
		err := Replace(path, []byte("repaired\n"), Options{Unchanged: func() error {
			os.WriteFile(path, []byte("operator's edit\n"), 0o644) // lands during the write
			return errEdited
		}})
		if err != errEdited {
			t.Fatalf("err = %v, want the Unchanged error", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "operator's edit\n" {
			t.Fatalf("operator's edit lost: %q", b)
		}
		if got := strings.Join(names(t, dir), " "); got != "ecs.config" {
			t.Fatalf("directory: %s", got)
		}
	})
	t.Run("created meanwhile", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "etc/ecs.config")
		err := Replace(path, []byte("ours\n"), Options{Create: true, Unchanged: func() error {
			return os.WriteFile(path, []byte("theirs\n"), 0o644) // appears during the write
		}})
		if !errors.Is(err, os.ErrExist) {
			t.Fatalf("err = %v, want ErrExist", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "theirs\n" {
			t.Fatalf("a file that appeared was replaced: %q", b)
		}
		if got := strings.Join(names(t, filepath.Dir(path)), " "); got != "ecs.config" {
			t.Fatalf("directory: %s", got)
		}
	})
	t.Run("create", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "new.conf")
		if err := Replace(path, []byte("x\n"), Options{Create: true}); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != "x\n" {
			t.Fatalf("%q", b)
		}
		if got := strings.Join(names(t, filepath.Dir(path)), " "); got != "new.conf" {
			t.Fatalf("directory: %s", got)
		}
	})
}
