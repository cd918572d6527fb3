package catalogs

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// saveByRename saves src as an editor does: written beside, renamed over.
func saveByRename(t testing.TB, path string, src []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".catalog.yaml.swp")
	put(t, tmp, src)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// eventually waits up to 5s for cond.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatch(t *testing.T) {
	var audit auditBuffer
	dir := t.TempDir()
	file := filepath.Join(dir, "catalog.yaml")
	put(t, file, catalog("one"))
	const debounce = 200 * time.Millisecond
	r := open(t, Options{Dir: t.TempDir(), Audit: NewAudit(&audit), Debounce: debounce})
	v1, err := r.Start(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Watch(ctx, file, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()
	// Once a first change is in force, the watch is set up. It is saved
	// whole (by rename): Watch reads the file once as it sets up, maybe
	// while this write is under way, and must not see it half written.
	saveByRename(t, file, catalog("probe"))
	probe := VersionOf(catalog("probe"))
	eventually(t, "first reload", func() bool { return r.Active().ID == probe })
	put(t, filepath.Join(dir, "other.yaml"), catalog("not watched"))

	// A burst of writes (as an editor may make) is read once, after it
	// settled: only the last content becomes a version.
	start := time.Now()
	for i := range 5 {
		put(t, file, catalog("burst "+string(rune('a'+i))))
		time.Sleep(debounce / 10)
	}
	put(t, file, catalog("two"))
	v2 := VersionOf(catalog("two"))
	eventually(t, "reload after a write", func() bool { return r.Active().ID == v2 })
	if took := time.Since(start); took < debounce {
		t.Errorf("reloaded %v after the first write of a burst, before the debounce of %v", took, debounce)
	}
	inForce(t, r, v2, "two")
	if got := len(r.Versions()); got != 3 {
		t.Errorf("versions after a burst: got %d, want 3 (one per settled content)", got)
	}

	// Saved by rename.
	saveByRename(t, file, catalog("three"))
	v3 := VersionOf(catalog("three"))
	eventually(t, "reload after a rename", func() bool { return r.Active().ID == v3 })

	// A bad file is rejected and the catalog in force stays; saving it
	// again unchanged is not audited twice.
	saveByRename(t, file, badCatalog)
	eventually(t, "rejection audited", func() bool { return len(audit.events(t)) == 5 })
	put(t, file, badCatalog)
	time.Sleep(3 * debounce)
	inForce(t, r, v3, "three")

	// An upload since the last edit stays in force when the file is only
	// touched.
	v4 := mustLoad(t, r, catalog("four"), "alice")
	now := time.Now()
	if err := os.Chtimes(file, now, now); err != nil {
		t.Fatal(err)
	}
	saveByRename(t, file, badCatalog)
	time.Sleep(3 * debounce)
	inForce(t, r, v4.ID, "four")

	checkAudit(t, audit.events(t), []AuditEvent{
		{Action: ActionStartup, Actor: "startup", Version: v1.ID},
		{Action: ActionReload, Actor: "file", Version: probe, Previous: v1.ID},
		{Action: ActionReload, Actor: "file", Version: v2, Previous: probe},
		{Action: ActionReload, Actor: "file", Version: v3, Previous: v2},
		{Action: ActionReload, Actor: "file", Version: VersionOf(badCatalog), Previous: v3, Rejected: true, Errors: 3},
		{Action: ActionUpload, Actor: "alice", Version: v4.ID, Previous: v3},
	})
}

func TestWatchMissingDir(t *testing.T) {
	r := open(t, Options{})
	err := r.Watch(context.Background(), filepath.Join(t.TempDir(), "no", "catalog.yaml"), nil)
	if err == nil {
		t.Fatal("Watch on a missing directory: got no error")
	}
}
