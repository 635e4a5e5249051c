package safefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	os.WriteFile(p("plain"), []byte("hello\n"), 0o640)
	os.WriteFile(p("big"), make([]byte, 101), 0o644)
	if err := syscall.Mkfifo(p("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/zero", p("zero"))
	os.Symlink("plain", p("link-inside"))
	os.MkdirAll(p("sub"), 0o755)
	os.WriteFile(p("sub/other"), []byte("x"), 0o644)
	os.Symlink(p("sub/other"), p("link-outside"))
	os.Symlink("fifo", p("link-fifo"))
	os.Symlink("gone", p("dangling"))
	os.WriteFile(p("file"), nil, 0o644)

	for _, tc := range []struct {
		name   string
		follow Follow
		kind   error // nil: read
		want   string
	}{
		{"plain", FollowAny, nil, "hello\n"},
		{"plain", FollowNone, nil, "hello\n"},
		{"link-inside", FollowAny, nil, "hello\n"},
		{"link-inside", FollowSameDir, nil, "hello\n"},
		{"link-inside", FollowNone, ErrSymlink, "is a symlink to plain"},
		{"link-outside", FollowAny, nil, "x"},
		{"link-outside", FollowSameDir, ErrSymlink, "outside its directory"},
		{"fifo", FollowAny, ErrNotRegular, "is a FIFO, not a regular file"},
		{"link-fifo", FollowAny, ErrNotRegular, "is a FIFO"},
		{"link-fifo", FollowSameDir, ErrSymlink, "which is a FIFO"},
		{"zero", FollowAny, ErrNotRegular, "is a character device"},
		{"big", FollowAny, ErrTooLarge, "is 101 bytes, larger than the 100 bytes allowed"},
		{"sub", FollowAny, ErrNotRegular, "is a directory"},
		{"missing", FollowAny, fs.ErrNotExist, "does not exist"},
		{"dangling", FollowAny, fs.ErrNotExist, "does not exist"},
		{"file/below", FollowAny, ErrParentNoDir, "a parent of this path is a file"},
	} {
		t.Run(tc.name+"/"+map[Follow]string{FollowAny: "any", FollowNone: "none", FollowSameDir: "samedir"}[tc.follow], func(t *testing.T) {
			f, err := Read(p(tc.name), Options{Max: 100, Follow: tc.follow})
			if tc.kind == nil {
				if err != nil || string(f.Data) != tc.want || !f.Info.Mode().IsRegular() {
					t.Fatalf("got %v %v", f, err)
				}
				return
			}
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p(tc.name)) {
				t.Fatalf("err %v, want %v with %q and the path", err, tc.kind, tc.want)
			}
		})
	}
}

// The descriptor is read in blocking mode once validated: O_NONBLOCK was
// only for the open (a regular file ignores it anyway; this checks the
// flag is really cleared, so a later reader of the fd never sees EAGAIN).
func TestClearNonblock(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := syscall.SetNonblock(int(r.Fd()), true); err != nil {
		t.Fatal(err)
	}
	if err := clearNonblock(r); err != nil {
		t.Fatal(err)
	}
	fl, _, errno := syscall.Syscall(syscall.SYS_FCNTL, r.Fd(), syscall.F_GETFL, 0)
	if errno != 0 || fl&syscall.O_NONBLOCK != 0 {
		t.Fatalf("flags %#x errno %v", fl, errno)
	}
}

func TestReadLimited(t *testing.T) {
	if b, err := ReadLimited(strings.NewReader("abc"), "stdin", 3); err != nil || string(b) != "abc" {
		t.Fatalf("%q %v", b, err)
	}
	_, err := ReadLimited(strings.NewReader("abcd"), "standard input", 3)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "standard input is larger than the 3 bytes allowed") {
		t.Fatalf("%v", err)
	}
}

func TestWriteTarget(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "real"), nil, 0o644)
	os.Symlink("real", filepath.Join(dir, "link"))
	if got, err := WriteTarget(filepath.Join(dir, "link")); err != nil || filepath.Base(got) != "real" {
		t.Fatalf("%q %v", got, err)
	}
	if got, err := WriteTarget(filepath.Join(dir, "real")); err != nil || got != filepath.Join(dir, "real") {
		t.Fatalf("%q %v", got, err)
	}
	os.Symlink("/etc/passwd", filepath.Join(dir, "out"))
	if _, err := WriteTarget(filepath.Join(dir, "out")); !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), "/etc/passwd") {
		t.Fatalf("%v", err)
	}
}
