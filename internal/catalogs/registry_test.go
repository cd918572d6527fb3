package catalogs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nextbest/nextbest/rules"
)

// catalog returns a small good catalog whose one offer has headline h.
func catalog(h string) []byte {
	return fmt.Appendf(nil, `channels: [web]
features:
  tier: {type: string, default: "none"}
offers:
  - id: a
    channels: [web]
    content:
      web: {headline: %q}
`, h)
}

// badCatalog has three errors.
var badCatalog = []byte(`channels: [web]
features:
  tier: {type: string}
segments:
  vip: customer.tier == 3
offers:
  - id: a
    channels: [web, fax]
    eligible: customer.nope > 1
    content:
      web: {headline: "A"}
`)

// headline is the headline of the one offer of a catalog built by catalog.
func headline(t testing.TB, c *rules.Catalog) string {
	t.Helper()
	var content struct{ Headline string }
	ch, _ := c.Channel("web")
	if err := json.Unmarshal(c.Offers[0].Content(ch).JSON, &content); err != nil {
		t.Fatal(err)
	}
	return content.Headline
}

// clock is a test clock advancing a second a call.
func clock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

// auditBuffer collects audit lines.
type auditBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (a *auditBuffer) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.b.Write(p)
}

func (a *auditBuffer) events(t testing.TB) []AuditEvent {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	return parseAudit(t, a.b.String())
}

func parseAudit(t testing.TB, s string) []AuditEvent {
	t.Helper()
	var evs []AuditEvent
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var e AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		evs = append(evs, e)
	}
	return evs
}

func open(t testing.TB, opts Options) *Registry {
	t.Helper()
	if opts.Now == nil {
		opts.Now = clock()
	}
	r, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// closed closes r, to open its directory again.
func closed(t testing.TB, r *Registry) {
	t.Helper()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func ids(vs []Version) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.ID)
	}
	return out
}

func mustLoad(t testing.TB, r *Registry, src []byte, actor string) Version {
	t.Helper()
	v, err := r.Load(src, actor)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return v
}

// inForce checks the catalog published is version v with headline h.
func inForce(t testing.TB, r *Registry, v, h string) {
	t.Helper()
	c := r.Catalog().Load()
	if c == nil {
		t.Fatalf("no catalog in force, want %s", v)
	}
	if c.Version != v || headline(t, c) != h {
		t.Errorf("in force: got %s %q, want %s %q", c.Version, headline(t, c), v, h)
	}
	if got := r.Active().ID; got != v {
		t.Errorf("Active: got %s, want %s", got, v)
	}
}

func TestVersionOf(t *testing.T) {
	a, b := VersionOf(catalog("one")), VersionOf(catalog("two"))
	if len(a) != 12 || !validID(a) || a == b || a != VersionOf(catalog("one")) {
		t.Errorf("VersionOf: got %q and %q", a, b)
	}
	for _, id := range []string{"", "../../etc/pa", "ABCDEF123456", "abcdef12345", "abcdef1234567"} {
		if validID(id) {
			t.Errorf("validID(%q): got true", id)
		}
	}
}

func TestOpenValidates(t *testing.T) {
	for _, opts := range []Options{{MaxVersions: -1}, {Debounce: -1}} {
		if _, err := Open(opts); err == nil {
			t.Errorf("Open(%+v): got no error", opts)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, indexName), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), indexName) {
		t.Errorf("Open on a corrupt index: got %v, want an error naming it", err)
	}
}

func TestLoadVersions(t *testing.T) {
	var audit auditBuffer
	r := open(t, Options{Audit: NewAudit(&audit)})
	if got := r.Active(); got != (Version{}) || r.Catalog().Load() != nil {
		t.Fatalf("before any load: got %+v", got)
	}
	v1 := mustLoad(t, r, catalog("one"), "alice")
	v2 := mustLoad(t, r, catalog("two"), "bob")
	if v1.ID != VersionOf(catalog("one")) || v1.Actor != "alice" || v1.Previous != "" || v1.Time.IsZero() {
		t.Errorf("v1: got %+v", v1)
	}
	if v2.Actor != "bob" || v2.Previous != v1.ID || !v2.Time.After(v1.Time) {
		t.Errorf("v2: got %+v", v2)
	}
	inForce(t, r, v2.ID, "two")
	if got, want := ids(r.Versions()), []string{v2.ID, v1.ID}; !slices.Equal(got, want) {
		t.Errorf("versions: got %v, want %v", got, want)
	}

	// The catalog in force again: nothing changes.
	if again := mustLoad(t, r, catalog("two"), "carol"); again != v2 {
		t.Errorf("loading the version in force: got %+v, want %+v", again, v2)
	}
	// An older one again: accepted anew, on top, not kept twice.
	v1b := mustLoad(t, r, catalog("one"), "carol")
	if v1b.ID != v1.ID || v1b.Actor != "carol" || v1b.Previous != v2.ID {
		t.Errorf("v1 again: got %+v", v1b)
	}
	if got, want := ids(r.Versions()), []string{v1.ID, v2.ID}; !slices.Equal(got, want) {
		t.Errorf("versions: got %v, want %v", got, want)
	}
	inForce(t, r, v1.ID, "one")

	want := []AuditEvent{
		{Action: ActionUpload, Actor: "alice", Version: v1.ID},
		{Action: ActionUpload, Actor: "bob", Version: v2.ID, Previous: v1.ID},
		{Action: ActionUpload, Actor: "carol", Version: v1.ID, Previous: v2.ID},
	}
	checkAudit(t, audit.events(t), want)
}

// checkAudit compares audit events, but for their times, which must be set.
func checkAudit(t testing.TB, got, want []AuditEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("audit: got %d events %+v, want %d", len(got), got, len(want))
	}
	for i := range got {
		if got[i].Time.IsZero() {
			t.Errorf("audit %d: no time", i)
		}
		got[i].Time = time.Time{}
		if got[i] != want[i] {
			t.Errorf("audit %d:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestLoadRejects(t *testing.T) {
	var audit auditBuffer
	r := open(t, Options{Audit: NewAudit(&audit), Dir: t.TempDir()})
	v1 := mustLoad(t, r, catalog("one"), "alice")

	err := r.Validate(badCatalog)
	var errs rules.Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("Validate: got %v, want 3 rules.Errors", err)
	}
	if errs[0].File != UploadName || errs[0].Line != 5 || errs[0].Object != `segment "vip"` {
		t.Errorf("first error: got %+v", errs[0])
	}
	if err := r.Validate(catalog("fine")); err != nil {
		t.Errorf("Validate a good catalog: %v", err)
	}

	_, err = r.Load(badCatalog, "mallory")
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("Load: got %v, want 3 rules.Errors", err)
	}
	inForce(t, r, v1.ID, "one")
	if got := ids(r.Versions()); !slices.Equal(got, []string{v1.ID}) {
		t.Errorf("versions after a rejection: got %v", got)
	}
	checkAudit(t, audit.events(t), []AuditEvent{
		{Action: ActionUpload, Actor: "alice", Version: v1.ID},
		{Action: ActionUpload, Actor: "mallory", Version: VersionOf(badCatalog), Previous: v1.ID, Rejected: true, Errors: 3},
	})
}

func TestRollback(t *testing.T) {
	var audit auditBuffer
	r := open(t, Options{Audit: NewAudit(&audit), Dir: t.TempDir()})
	v1 := mustLoad(t, r, catalog("one"), "alice")
	v2 := mustLoad(t, r, catalog("two"), "bob")

	if _, err := r.Rollback("0123456789ab", "carol"); !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("unknown version: got %v, want ErrUnknownVersion", err)
	}
	if _, err := r.Rollback("../index.json", "carol"); !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("a path: got %v, want ErrUnknownVersion", err)
	}
	got, err := r.Rollback(v1.ID, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if got != v1 {
		t.Errorf("Rollback returned %+v, want %+v", got, v1)
	}
	inForce(t, r, v1.ID, "one")
	if got, want := ids(r.Versions()), []string{v2.ID, v1.ID}; !slices.Equal(got, want) {
		t.Errorf("versions after a rollback: got %v, want %v (unchanged)", got, want)
	}
	// To the version in force: nothing to do, nothing audited.
	if _, err := r.Rollback(v1.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rollback(v2.ID, "dave"); err != nil {
		t.Fatal(err)
	}
	inForce(t, r, v2.ID, "two")
	checkAudit(t, audit.events(t), []AuditEvent{
		{Action: ActionUpload, Actor: "alice", Version: v1.ID},
		{Action: ActionUpload, Actor: "bob", Version: v2.ID, Previous: v1.ID},
		{Action: ActionRollback, Actor: "carol", Version: v1.ID, Previous: v2.ID},
		{Action: ActionRollback, Actor: "dave", Version: v2.ID, Previous: v1.ID},
	})
}

// TestRollbackInMemory: without a Dir the sources are kept in memory.
func TestRollbackInMemory(t *testing.T) {
	r := open(t, Options{})
	v1 := mustLoad(t, r, catalog("one"), "alice")
	mustLoad(t, r, catalog("two"), "bob")
	if _, err := r.Rollback(v1.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	inForce(t, r, v1.ID, "one")
}

func put(t testing.TB, path string, src []byte) {
	t.Helper()
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPersistAcrossReopen(t *testing.T) {
	dir, file := t.TempDir(), filepath.Join(t.TempDir(), "catalog.yaml")
	put(t, file, catalog("one"))
	auditPath := filepath.Join(t.TempDir(), "audit.log")
	audit, err := OpenAudit(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	r := open(t, Options{Dir: dir, Audit: audit})
	v1, err := r.Start(file)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Actor != "startup" {
		t.Errorf("Start: got %+v, want actor startup", v1)
	}
	v2 := mustLoad(t, r, catalog("two"), "alice")
	v3 := mustLoad(t, r, catalog("three"), "bob")
	if _, err := r.Rollback(v2.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	before := r.Versions()
	if err := audit.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart with the file unchanged: the rollback stays in force.
	audit, err = OpenAudit(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	closed(t, r)
	r = open(t, Options{Dir: dir, Audit: audit})
	inForce(t, r, v2.ID, "two")
	if diff := slices.Compare(ids(before), ids(r.Versions())); diff != 0 {
		t.Errorf("versions after reopening: got %v, want %v", ids(r.Versions()), ids(before))
	}
	for i, v := range r.Versions() {
		if !v.Time.Equal(before[i].Time) || v.Actor != before[i].Actor || v.Previous != before[i].Previous {
			t.Errorf("version %d after reopening: got %+v, want %+v", i, v, before[i])
		}
	}
	if v, err := r.Start(file); err != nil || v.ID != v2.ID {
		t.Errorf("Start with the file unchanged: got %+v %v, want %s kept", v, err, v2.ID)
	}
	inForce(t, r, v2.ID, "two")
	if _, err := r.Rollback(v3.ID, "dave"); err != nil {
		t.Errorf("rollback after reopening: %v", err)
	}

	// A restart after the file changed: the file wins.
	put(t, file, catalog("four"))
	closed(t, r)
	r = open(t, Options{Dir: dir, Audit: audit})
	inForce(t, r, v3.ID, "three")
	v4, err := r.Start(file)
	if err != nil {
		t.Fatal(err)
	}
	inForce(t, r, v4.ID, "four")
	if v4.Actor != "startup" || v4.Previous != v3.ID {
		t.Errorf("Start with a changed file: got %+v", v4)
	}
	// A restart on a bad file starts on the last good version, changes
	// nothing, and reports the file's errors.
	put(t, file, badCatalog)
	closed(t, r)
	r = open(t, Options{Dir: dir, Audit: audit})
	var errs rules.Errors
	if v, err := r.Start(file); err != nil || v.ID != v4.ID {
		t.Errorf("Start with a bad file: got %v, %v; want the last good version %s", v.ID, err, v4.ID)
	}
	if err := r.FileRejected(); !errors.As(err, &errs) || errs[0].File != file {
		t.Errorf("FileRejected after a start with a bad file: got %v, want its errors", err)
	}
	inForce(t, r, v4.ID, "four")
	if err := audit.Close(); err != nil {
		t.Fatal(err)
	}

	b, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	checkAudit(t, parseAudit(t, string(b)), []AuditEvent{
		{Action: ActionStartup, Actor: "startup", Version: v1.ID},
		{Action: ActionUpload, Actor: "alice", Version: v2.ID, Previous: v1.ID},
		{Action: ActionUpload, Actor: "bob", Version: v3.ID, Previous: v2.ID},
		{Action: ActionRollback, Actor: "carol", Version: v2.ID, Previous: v3.ID},
		{Action: ActionRollback, Actor: "dave", Version: v3.ID, Previous: v2.ID},
		{Action: ActionStartup, Actor: "startup", Version: v4.ID, Previous: v3.ID},
		{Action: ActionStartup, Actor: "startup", Version: VersionOf(badCatalog), Previous: v4.ID, Rejected: true, Errors: 3},
	})
}

// TestReopenStrays: what a crash leaves (a temporary file, the source of
// a version the index never named) is removed; a version in force that is
// missing is not restored, and the file is loaded instead.
func TestReopenStrays(t *testing.T) {
	dir := t.TempDir()
	r := open(t, Options{Dir: dir})
	v1 := mustLoad(t, r, catalog("one"), "alice")
	stray := filepath.Join(dir, VersionOf(catalog("stray"))+".yaml")
	put(t, stray, catalog("stray"))
	put(t, filepath.Join(dir, tmpPrefix+"123"), []byte("half"))
	closed(t, r)
	r = open(t, Options{Dir: dir})
	inForce(t, r, v1.ID, "one")
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{v1.ID + ".yaml", "LOCK", indexName}; !slices.Equal(names, want) {
		t.Errorf("files after reopening: got %v, want %v", names, want)
	}

	if err := os.Remove(filepath.Join(dir, v1.ID+".yaml")); err != nil {
		t.Fatal(err)
	}
	closed(t, r)
	r = open(t, Options{Dir: dir})
	if c := r.Catalog().Load(); c != nil || r.Active().ID != "" {
		t.Fatalf("a version in force that is gone: got %v in force", r.Active())
	}
	file := filepath.Join(t.TempDir(), "catalog.yaml")
	put(t, file, catalog("one"))
	if _, err := r.Start(file); err != nil {
		t.Fatal(err)
	}
	inForce(t, r, v1.ID, "one")
}

func TestBoundedHistory(t *testing.T) {
	dir := t.TempDir()
	r := open(t, Options{Dir: dir, MaxVersions: 3})
	var vs []Version
	for i := range 5 {
		vs = append(vs, mustLoad(t, r, catalog(fmt.Sprint(i)), "alice"))
	}
	if got, want := ids(r.Versions()), []string{vs[4].ID, vs[3].ID, vs[2].ID}; !slices.Equal(got, want) {
		t.Errorf("versions: got %v, want %v", got, want)
	}
	for i, v := range vs {
		_, err := os.Stat(filepath.Join(dir, v.ID+".yaml"))
		if kept := i >= 2; kept != (err == nil) {
			t.Errorf("version %d source: kept %v, stat %v", i, kept, err)
		}
	}
	if _, err := r.Rollback(vs[0].ID, "bob"); !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("rollback to a dropped version: got %v", err)
	}
	// The versions go in the order they were accepted: one rolled back to
	// is the oldest still, and goes first once another is in force.
	if _, err := r.Rollback(vs[2].ID, "bob"); err != nil {
		t.Fatal(err)
	}
	v5 := mustLoad(t, r, catalog("5"), "alice")
	if got, want := ids(r.Versions()), []string{v5.ID, vs[4].ID, vs[3].ID}; !slices.Equal(got, want) {
		t.Errorf("versions: got %v, want %v", got, want)
	}
	closed(t, r)
	r = open(t, Options{Dir: dir, MaxVersions: 3})
	if got := len(r.Versions()); got != 3 {
		t.Errorf("versions after reopening: got %d, want 3", got)
	}
}

// TestConcurrentReaders: readers load the catalog while it is swapped;
// each sees a whole catalog whose version matches its content (run with
// -race).
func TestConcurrentReaders(t *testing.T) {
	r := open(t, Options{Dir: t.TempDir(), MaxVersions: 5})
	byVersion := make(map[string]string)
	for i := range 10 {
		byVersion[VersionOf(catalog(fmt.Sprint(i)))] = fmt.Sprint(i)
	}
	mustLoad(t, r, catalog("0"), "alice")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads sync.Map
	for g := range 4 {
		wg.Go(func() {
			n := 0
			for {
				select {
				case <-stop:
					reads.Store(g, n)
					return
				default:
				}
				c := r.Catalog().Load()
				if h := headline(t, c); byVersion[c.Version] != h {
					t.Errorf("catalog %q has version %s, which is %q", h, c.Version, byVersion[c.Version])
					return
				}
				n++
			}
		})
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = r.Versions()
				_ = r.Active()
			}
		})
	}
	for i := range 50 {
		if i%3 == 2 {
			vs := r.Versions()
			if _, err := r.Rollback(vs[len(vs)-1].ID, "bob"); err != nil {
				t.Error(err)
			}
			continue
		}
		mustLoad(t, r, catalog(fmt.Sprint(i%10)), "alice")
	}
	close(stop)
	wg.Wait()
}

func TestAuditConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "audit.log")
	a, err := OpenAudit(path)
	if err != nil {
		t.Fatal(err)
	}
	var nilAudit *Audit
	if err := nilAudit.Record(AuditEvent{Action: "x"}); err != nil {
		t.Errorf("nil Audit: %v", err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				if err := a.Record(AuditEvent{Action: "key.create", Actor: fmt.Sprint(g), Subject: fmt.Sprintf("key-%d-%d", g, i)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	evs := parseAudit(t, string(b))
	if len(evs) != 200 {
		t.Fatalf("audit lines: got %d, want 200", len(evs))
	}
	seen := make(map[string]bool)
	for _, e := range evs {
		if e.Time.IsZero() || e.Time.Location() != time.UTC || e.Action != "key.create" {
			t.Errorf("event %+v", e)
		}
		seen[e.Subject] = true
	}
	if len(seen) != 200 {
		t.Errorf("distinct events: got %d, want 200", len(seen))
	}
	if !strings.Contains(string(b), `"subject":"key-0-0"`) || strings.Contains(string(b), `"version"`) {
		t.Errorf("audit line form: %s", strings.SplitN(string(b), "\n", 2)[0])
	}
}

// TestDirLocked: one registry writes a directory at a time.
func TestDirLocked(t *testing.T) {
	dir := t.TempDir()
	r := open(t, Options{Dir: dir})
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a second registry on %s: got %v, want it refused", dir, err)
	}
	v1 := mustLoad(t, r, catalog("one"), "alice")
	closed(t, r)
	if _, err := r.Load(catalog("two"), "alice"); !errors.Is(err, ErrClosed) {
		t.Errorf("Load after Close: got %v, want ErrClosed", err)
	}
	if _, err := r.Rollback(v1.ID, "alice"); !errors.Is(err, ErrClosed) {
		t.Errorf("Rollback after Close: got %v, want ErrClosed", err)
	}
	r = open(t, Options{Dir: dir})
	inForce(t, r, v1.ID, "one")
}

// TestStartOnLastGood checks a restart on a catalog file with problems
// keeps the last good version in force and reports the file through
// FileRejected until a good file is read; a start with no good version,
// or an unreadable file, is still an error.
func TestStartOnLastGood(t *testing.T) {
	tests := []struct {
		name      string
		before    []byte // the file of an earlier run on the same Dir; nil: none
		file      []byte // the file at this start; nil: missing
		wantErr   bool
		wantHead  string // in force after Start
		wantStale bool
	}{
		{name: "first start, bad file", file: badCatalog, wantErr: true},
		{name: "first start, good file", file: catalog("one"), wantHead: "one"},
		{name: "restart, bad file", before: catalog("one"), file: badCatalog, wantHead: "one", wantStale: true},
		{name: "restart, changed good file", before: catalog("one"), file: catalog("two"), wantHead: "two"},
		{name: "restart, missing file", before: catalog("one"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, file := t.TempDir(), filepath.Join(t.TempDir(), "catalog.yaml")
			if tt.before != nil {
				put(t, file, tt.before)
				r := open(t, Options{Dir: dir})
				if _, err := r.Start(file); err != nil {
					t.Fatal(err)
				}
				closed(t, r)
				os.Remove(file)
			}
			if tt.file != nil {
				put(t, file, tt.file)
			}
			r := open(t, Options{Dir: dir})
			v, err := r.Start(file)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Start: %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				if r.Catalog().Load() != nil && tt.before == nil {
					t.Error("a catalog is in force after a failed first start")
				}
				return
			}
			inForce(t, r, v.ID, tt.wantHead)
			var errs rules.Errors
			if ferr := r.FileRejected(); (ferr != nil) != tt.wantStale || (tt.wantStale && (!errors.As(ferr, &errs) || len(errs) != 3)) {
				t.Fatalf("FileRejected: %v, want stale %v with the file's 3 errors", ferr, tt.wantStale)
			}
			if !tt.wantStale {
				return
			}
			// An upload does not make the file good; a good file does.
			mustLoad(t, r, catalog("uploaded"), "alice")
			if r.FileRejected() == nil {
				t.Error("FileRejected cleared by an upload, while the file still has problems")
			}
			put(t, file, catalog("fixed"))
			r.reload(file, r.log)
			if err := r.FileRejected(); err != nil {
				t.Errorf("FileRejected after the fix: %v", err)
			}
			inForce(t, r, VersionOf(catalog("fixed")), "fixed")
		})
	}
}
