//go:build linux

// Package tmpfstest mounts small tmpfs volumes for tests that need a disk
// to fill, such as the feature store's full-disk tests.
//
// Mounting needs root (CAP_SYS_ADMIN). Without it, a test calling Mount is
// skipped with a clear message, unless NEXTBEST_REQUIRE_ROOT=1 (set by
// .ci/run), where it fails. Every volume is unmounted by t.Cleanup.
package tmpfstest

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of size (a mount option value such as "8m") on a
// fresh temporary directory and returns the directory.
func Mount(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size); err != nil {
		if os.Getenv("NEXTBEST_REQUIRE_ROOT") == "1" {
			t.Fatalf("mount a tmpfs on %s: %v (NEXTBEST_REQUIRE_ROOT=1: the tests must run as root)", dir, err)
		}
		t.Skipf("skipped: mounting a tmpfs needs root (%v); NEXTBEST_REQUIRE_ROOT=1 makes this a failure", err)
	}
	// Registered after TempDir's removal, so it runs before it, and
	// before any cleanup the test registers later (a server using the
	// volume is stopped first).
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Available returns the bytes available on the volume holding path.
func Available(t testing.TB, path string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// Fill writes the file path until its volume has at most leave bytes
// available (leave 0: none at all). Removing the file gives the space
// back.
func Fill(t testing.TB, path string, leave int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		free := Available(t, filepath.Dir(path))
		if free <= leave {
			return
		}
		n := min(free-leave, int64(len(chunk)))
		if _, err := f.Write(chunk[:n]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}
