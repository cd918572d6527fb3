package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nextbest/nextbest/internal/catalogs"
)

// Issue 6's live catalog changes against the real binary: while a decide
// load runs, a bad catalog is refused, a good one is swapped in, a
// rollback returns to the first, an edit of the watched file is reloaded;
// then the versions survive a restart.

// liveCatalogs are the test catalog and two variants differing in the
// headline of the welcome offer on the web, so that a decision shows
// which catalog made it.
func liveCatalogs(t *testing.T) (src [3][]byte, headlines [3]string) {
	t.Helper()
	first, err := os.ReadFile(testCatalog)
	if err != nil {
		t.Fatal(err)
	}
	headlines = [3]string{"Welcome to the shop", "Hello again", "Good to see you"}
	for i, h := range headlines {
		src[i] = bytes.Replace(first, []byte(`"`+headlines[0]+`"`), []byte(`"`+h+`"`), 1)
	}
	if bytes.Equal(src[0], src[1]) {
		t.Fatalf("%s has no headline %q to change", testCatalog, headlines[0])
	}
	return src, headlines
}

// saveCatalog saves src at path as an editor does: written beside, then
// renamed over it.
func saveCatalog(t *testing.T, path string, src []byte) {
	t.Helper()
	tmp := path + ".swp"
	if err := os.WriteFile(tmp, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// decided is one decision of the load: when it was asked and answered,
// and by which catalog.
type decided struct {
	start, end time.Time
	version    string
	headline   string
}

// decideLoad sends decisions from several goroutines until stopped (or a
// bound of count or time is reached) and keeps what came back.
type decideLoad struct {
	url     string
	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup

	mu   sync.Mutex
	got  []decided
	errs []string
}

func startDecideLoad(url string, workers int) *decideLoad {
	l := &decideLoad{url: url, stop: make(chan struct{})}
	deadline := time.Now().Add(2 * time.Minute)
	for w := range workers {
		l.wg.Go(func() {
			for i := range 20000 {
				select {
				case <-l.stop:
					return
				default:
				}
				if time.Now().After(deadline) {
					return
				}
				l.one(fmt.Sprintf(`{"customer_id":"load-%d-%d","channel":"web"}`, w, i%50))
			}
		})
	}
	return l
}

func (l *decideLoad) one(body string) {
	start := time.Now()
	resp, err := client.Post(l.url+"/v1/decide", "application/json", strings.NewReader(body))
	if err != nil {
		l.fail(err.Error())
		return
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	end := time.Now()
	if err != nil || resp.StatusCode != 200 {
		l.fail(fmt.Sprintf("%d %s %v", resp.StatusCode, b, err))
		return
	}
	var d struct {
		CatalogVersion *string `json:"catalog_version"`
		Offers         []struct {
			Content struct{ Headline string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil || d.CatalogVersion == nil {
		l.fail(fmt.Sprintf("decision without a catalog version: %s %v", b, err))
		return
	}
	l.mu.Lock()
	var h string
	if len(d.Offers) > 0 {
		h = d.Offers[0].Content.Headline
	}
	l.got = append(l.got, decided{start, end, *d.CatalogVersion, h})
	l.mu.Unlock()
}

func (l *decideLoad) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, msg)
}

// halt stops the load and waits for its last decisions; it may be
// called again.
func (l *decideLoad) halt() {
	l.stopped.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// since returns the decisions asked after t.
func (l *decideLoad) since(t time.Time) []decided {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []decided
	for _, d := range l.got {
		if d.start.After(t) {
			out = append(out, d)
		}
	}
	return out
}

// waitFor waits until the load has n decisions asked after t.
func (l *decideLoad) waitFor(t *testing.T, after time.Time, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(l.since(after)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the load made fewer than %d decisions in 10s (errors: %v)", n, l.errs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type versionsResponse struct {
	Active   string
	Versions []struct {
		Version  string
		Time     time.Time
		Actor    string
		Previous string
		Active   bool
	}
}

func (s *server) versions() versionsResponse {
	s.t.Helper()
	var vs versionsResponse
	if err := json.Unmarshal([]byte(s.mustCall("GET", "/v1/admin/catalog/versions", "", 200)), &vs); err != nil {
		s.t.Fatal(err)
	}
	return vs
}

func TestServeLiveCatalogChanges(t *testing.T) {
	src, headlines := liveCatalogs(t)
	var ids [3]string
	for i := range src {
		ids[i] = catalogs.VersionOf(src[i])
	}
	headlineOf := map[string]string{ids[0]: headlines[0], ids[1]: headlines[1], ids[2]: headlines[2]}
	dir, data := t.TempDir(), t.TempDir()
	file := filepath.Join(dir, "catalog.yaml")
	saveCatalog(t, file, src[0])
	args := []string{"--addr", "127.0.0.1:0", "--data", data, "--catalog", file}
	s := startServerIn(t, ".", args...)

	load := startDecideLoad(s.url, 4)
	defer load.halt()
	// in checks that every decision asked in [from, to) was made by
	// version want, and that there were some.
	in := func(what string, from, to time.Time, want string) {
		t.Helper()
		n := 0
		for _, d := range load.since(from) {
			if !d.end.Before(to) {
				continue
			}
			n++
			if d.version != want {
				t.Errorf("%s: a decision asked at %v was made by %s, want %s", what, d.start.Format(time.StampMicro), d.version, want)
				return
			}
		}
		if n == 0 {
			t.Errorf("%s: no decision", what)
		}
	}
	start := time.Now()
	load.waitFor(t, start, 100)

	// 1. A bad catalog is refused with every error; the first keeps serving.
	bad, err := os.ReadFile("testdata/invalid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/admin/catalog/validate", "/v1/admin/catalog"} {
		status, body := s.call("POST", path, string(bad), "Content-Type", "application/yaml")
		var e struct {
			Error struct {
				Code    string
				Message string
				Errors  []struct {
					File          string
					Line, Column  int
					Object, Field string
					Message       string
				}
			}
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || status != 422 {
			t.Fatalf("POST %s a bad catalog: got %d %s (%v), want 422", path, status, body, err)
		}
		if e.Error.Code != "invalid_catalog" || len(e.Error.Errors) != 5 {
			t.Fatalf("POST %s a bad catalog: got %+v, want its 5 errors", path, e.Error)
		}
		// As nextbest validate reports them (integration_test.go).
		got := e.Error.Errors[1]
		if got.Line != 9 || got.Column != 21 || got.Object != `offer "a"` || got.Field != "channels" || got.Message != `channel "fax" is not one of web, app` {
			t.Errorf("second error: got %+v", got)
		}
	}
	pushed := time.Now()
	load.waitFor(t, pushed, 100)
	in("before and after a bad push", start, time.Now(), ids[0])

	// 2. A good catalog is swapped in: every decision asked once the
	// upload is answered is made by it.
	var v struct{ Version, Actor, Previous string }
	if err := json.Unmarshal([]byte(mustCallYAML(s, "/v1/admin/catalog", src[1])), &v); err != nil {
		t.Fatal(err)
	}
	if v.Version != ids[1] || v.Previous != ids[0] || v.Actor == "" {
		t.Errorf("upload: got %+v", v)
	}
	uploaded := time.Now()
	load.waitFor(t, uploaded, 100)
	in("after the upload", uploaded, time.Now(), ids[1])

	// 3. A rollback returns to the first.
	if err := json.Unmarshal([]byte(s.mustCall("POST", "/v1/admin/catalog/rollback", `{"version":"`+ids[0]+`"}`, 200)), &v); err != nil {
		t.Fatal(err)
	}
	if v.Version != ids[0] {
		t.Errorf("rollback: got %+v", v)
	}
	rolledBack := time.Now()
	load.waitFor(t, rolledBack, 100)
	in("after the rollback", rolledBack, time.Now(), ids[0])

	// 4. An edit of the watched file is reloaded.
	saveCatalog(t, file, src[2])
	deadline := time.Now().Add(10 * time.Second)
	for s.versions().Active != ids[2] {
		if time.Now().After(deadline) {
			t.Fatalf("the edited catalog file was not reloaded within 10s:\n%s", s.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	reloaded := time.Now()
	load.waitFor(t, reloaded, 100)
	in("after the file was edited", reloaded, time.Now(), ids[2])

	load.halt()
	if len(load.errs) > 0 {
		t.Errorf("%d decisions failed during the changes, first: %s", len(load.errs), load.errs[0])
	}
	for _, d := range load.got {
		if h, ok := headlineOf[d.version]; !ok || h != d.headline {
			t.Fatalf("decision by version %q with headline %q: not a version accepted, or not its catalog", d.version, d.headline)
		}
	}
	t.Logf("%d decisions during the changes, none failed", len(load.got))

	before := s.versions()
	if got, want := versionIDs(before), []string{ids[2], ids[1], ids[0]}; !slices.Equal(got, want) {
		t.Errorf("versions: got %v, want %v", got, want)
	}
	wantActors := []string{"file", "anonymous", "startup"}
	for i, v := range before.Versions {
		if v.Actor != wantActors[i] || v.Active != (i == 0) || v.Time.IsZero() {
			t.Errorf("version %d: got %+v, want actor %s", i, v, wantActors[i])
		}
	}

	// 5. The versions survive a restart on the same data dir, and the one
	// in force stays in force.
	s.stop()
	s = startServerIn(t, ".", args...)
	after := s.versions()
	if diff := cmpVersions(before, after); diff != "" {
		t.Errorf("versions after a restart: %s", diff)
	}
	if h := welcomeHeadline(s); h != headlines[2] {
		t.Errorf("after a restart: headline %q, want %q", h, headlines[2])
	}
	s.mustCall("POST", "/v1/admin/catalog/rollback", `{"version":"`+ids[1]+`"}`, 200)
	if h := welcomeHeadline(s); h != headlines[1] {
		t.Errorf("rollback after a restart: headline %q, want %q", h, headlines[1])
	}
	s.stop()
	// A rollback survives a restart too, the file unchanged, with a
	// warning that the file is not what is in force.
	s = startServerIn(t, ".", args...)
	if h := welcomeHeadline(s); h != headlines[1] {
		t.Errorf("rollback after another restart: headline %q, want %q", h, headlines[1])
	}
	if !strings.Contains(s.logs.String(), "the catalog in force is not the catalog file") {
		t.Errorf("no warning that the catalog file is not in force:\n%s", s.logs)
	}
	s.stop()

	checkAuditLog(t, filepath.Join(data, "audit.log"), []string{
		"catalog.startup startup " + ids[0] + " rejected=false errors=0",
		"catalog.upload anonymous " + catalogs.VersionOf(bad) + " rejected=true errors=5",
		"catalog.upload anonymous " + ids[1] + " rejected=false errors=0",
		"catalog.rollback anonymous " + ids[0] + " rejected=false errors=0",
		"catalog.reload file " + ids[2] + " rejected=false errors=0",
		"catalog.rollback anonymous " + ids[1] + " rejected=false errors=0",
	})
}

// welcomeHeadline returns the headline of the first offer on the web.
func welcomeHeadline(s *server) string {
	s.t.Helper()
	d := s.decide(`{"customer_id":"r","channel":"web"}`)
	if len(d.Offers) == 0 {
		s.t.Fatalf("no offer on the web: %+v", d)
	}
	h, _ := d.Offers[0].Content["headline"].(string)
	return h
}

// mustCallYAML posts a catalog and returns the 200 answer.
func mustCallYAML(s *server, path string, src []byte) string {
	s.t.Helper()
	status, body := s.call("POST", path, string(src), "Content-Type", "application/yaml")
	if status != 200 {
		s.t.Fatalf("POST %s: got %d %s, want 200", path, status, body)
	}
	return body
}

func versionIDs(vs versionsResponse) []string {
	ids := []string{}
	for _, v := range vs.Versions {
		ids = append(ids, v.Version)
	}
	return ids
}

func cmpVersions(a, b versionsResponse) string {
	if a.Active != b.Active || len(a.Versions) != len(b.Versions) {
		return fmt.Sprintf("got %+v, want %+v", b, a)
	}
	for i := range a.Versions {
		x, y := a.Versions[i], b.Versions[i]
		if x.Version != y.Version || !x.Time.Equal(y.Time) || x.Actor != y.Actor || x.Previous != y.Previous || x.Active != y.Active {
			return fmt.Sprintf("version %d: got %+v, want %+v", i, y, x)
		}
	}
	return ""
}

// checkAuditLog checks every line of the audit log is JSON and the
// catalog changes are the ones wanted, each with a time.
func checkAuditLog(t *testing.T, path string, want []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct {
			Time                   time.Time
			Action, Actor, Version string
			Previous               string
			Rejected               bool
			Errors                 int
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if e.Time.IsZero() {
			t.Errorf("audit line without a time: %s", sc.Text())
		}
		if strings.HasPrefix(e.Action, "catalog.") {
			got = append(got, fmt.Sprintf("%s %s %s rejected=%v errors=%d", e.Action, e.Actor, e.Version, e.Rejected, e.Errors))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit log:\ngot  %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}
