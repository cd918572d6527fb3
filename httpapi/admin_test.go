package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest/internal/catalogs"
	"github.com/nextbest/nextbest/internal/keys"
)

// adminCatalogs are the catalogs of the admin tests: the test catalog,
// the same with another fallback, and one with three errors.
func adminCatalogs(t testing.TB) (first, second, bad []byte) {
	t.Helper()
	first, err := os.ReadFile("testdata/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	second = bytes.Replace(first, []byte(`"Welcome back"`), []byte(`"Hello again"`), 1)
	if bytes.Equal(first, second) {
		t.Fatal("testdata/catalog.yaml has no fallback headline to change")
	}
	bad = []byte(`channels: [web]
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
	return first, second, bad
}

// newAdminServer returns a server whose catalog is kept by a registry
// started on testdata/catalog.yaml.
func newAdminServer(t testing.TB, edit func(*testOptions)) (*Server, *catalogs.Registry) {
	t.Helper()
	reg, err := catalogs.Open(catalogs.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	if _, err := reg.Start("testdata/catalog.yaml"); err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, newFakeStore(), func(o *testOptions) {
		o.Catalog = reg.Catalog()
		o.Admin = reg
		if edit != nil {
			edit(o)
		}
	})
	return s, reg
}

// catalogErrorBody is a 422 answer.
type catalogErrorBody struct {
	Error struct {
		Code    string
		Message string
		Errors  []struct {
			File    string
			Line    int
			Column  int
			Object  string
			Field   string
			Message string
		}
	}
}

func decodeJSON(t *testing.T, r response, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// decidedBy returns the catalog version and fallback headline of a
// decision for an unknown customer on the web.
func decidedBy(t *testing.T, s *Server) (version, headline string) {
	t.Helper()
	d := decode(t, do(s, "POST", "/v1/decide", `{"customer_id":"anon","channel":"web"}`))
	if d.CatalogVersion == nil {
		t.Fatal("decision without a catalog_version")
	}
	h, _ := d.Fallback["headline"].(string)
	return *d.CatalogVersion, h
}

type versionsBody struct {
	Active   string
	Versions []versionJSON
}

func TestAdminCatalog(t *testing.T) {
	first, second, bad := adminCatalogs(t)
	s, _ := newAdminServer(t, nil)
	v1 := catalogs.VersionOf(first)
	if v, h := decidedBy(t, s); v != v1 || h != "Welcome back" {
		t.Fatalf("at start: decided by %s %q, want %s", v, h, v1)
	}
	var got versionJSON
	decodeJSON(t, do(s, "GET", "/v1/admin/catalog", ""), &got)
	if got.Version != v1 || got.Actor != "startup" || !got.Active || got.Time.IsZero() {
		t.Errorf("GET catalog: got %+v", got)
	}

	// Validate: every error, located; nothing changes.
	for _, uri := range []string{"/v1/admin/catalog/validate", "/v1/admin/catalog"} {
		r := do(s, "POST", uri, string(bad), "Content-Type", "application/yaml")
		if r.status != 422 {
			t.Fatalf("POST %s a bad catalog: got %d %s, want 422", uri, r.status, r.body)
		}
		var e catalogErrorBody
		decodeJSON(t, r, &e)
		if e.Error.Code != CodeInvalidCatalog || !strings.Contains(e.Error.Message, "3 errors") || len(e.Error.Errors) != 3 {
			t.Fatalf("POST %s a bad catalog: got %+v", uri, e)
		}
		first := e.Error.Errors[0]
		if first.File != catalogs.UploadName || first.Line != 5 || first.Column == 0 || first.Object != `segment "vip"` || first.Field != "rule" || !strings.Contains(first.Message, "mismatched types") {
			t.Errorf("first error: got %+v", first)
		}
		if v, _ := decidedBy(t, s); v != v1 {
			t.Errorf("after POST %s a bad catalog: decided by %s, want %s", uri, v, v1)
		}
	}
	var valid struct {
		Valid   bool
		Version string
	}
	decodeJSON(t, do(s, "POST", "/v1/admin/catalog/validate", string(second), "Content-Type", "text/yaml; charset=utf-8"), &valid)
	if !valid.Valid || valid.Version != catalogs.VersionOf(second) {
		t.Errorf("validate a good catalog: got %+v", valid)
	}
	if v, _ := decidedBy(t, s); v != v1 {
		t.Errorf("after validating: decided by %s, want %s", v, v1)
	}

	// Upload: in force at once.
	r := do(s, "POST", "/v1/admin/catalog", string(second), "Content-Type", "application/yaml")
	if r.status != 200 {
		t.Fatalf("upload: got %d %s", r.status, r.body)
	}
	decodeJSON(t, r, &got)
	v2 := catalogs.VersionOf(second)
	if got.Version != v2 || got.Actor != "anonymous" || got.Previous != v1 || !got.Active {
		t.Errorf("upload: got %+v", got)
	}
	if v, h := decidedBy(t, s); v != v2 || h != "Hello again" {
		t.Errorf("after the upload: decided by %s %q, want %s", v, h, v2)
	}

	var vs versionsBody
	decodeJSON(t, do(s, "GET", "/v1/admin/catalog/versions", ""), &vs)
	if vs.Active != v2 || len(vs.Versions) != 2 || vs.Versions[0].Version != v2 || !vs.Versions[0].Active || vs.Versions[1].Version != v1 || vs.Versions[1].Active {
		t.Errorf("versions: got %+v", vs)
	}

	// Rollback.
	r = do(s, "POST", "/v1/admin/catalog/rollback", fmt.Sprintf(`{"version":%q}`, v1))
	if r.status != 200 {
		t.Fatalf("rollback: got %d %s", r.status, r.body)
	}
	decodeJSON(t, r, &got)
	if got.Version != v1 || got.Actor != "startup" {
		t.Errorf("rollback: got %+v, want the first version as accepted", got)
	}
	if v, h := decidedBy(t, s); v != v1 || h != "Welcome back" {
		t.Errorf("after the rollback: decided by %s %q, want %s", v, h, v1)
	}
	decodeJSON(t, do(s, "GET", "/v1/admin/catalog/versions", ""), &vs)
	if vs.Active != v1 || len(vs.Versions) != 2 || !vs.Versions[1].Active {
		t.Errorf("versions after the rollback: got %+v", vs)
	}
}

func TestAdminCatalogBadRequests(t *testing.T) {
	s, _ := newAdminServer(t, func(o *testOptions) { o.MaxBodyBytes = 4096 })
	tests := []struct {
		name, method, uri, body string
		header                  []string
		status                  int
		code, contains          string
		allow                   string
	}{
		{name: "rollback unknown", method: "POST", uri: "/v1/admin/catalog/rollback", body: `{"version":"0123456789ab"}`, status: 404, code: CodeNotFound, contains: `unknown catalog version "0123456789ab"`},
		{name: "rollback path", method: "POST", uri: "/v1/admin/catalog/rollback", body: `{"version":"../index.json"}`, status: 404, code: CodeNotFound},
		{name: "rollback no version", method: "POST", uri: "/v1/admin/catalog/rollback", body: `{}`, status: 400, code: CodeInvalidRequest, contains: "version: is required"},
		{name: "rollback extra field", method: "POST", uri: "/v1/admin/catalog/rollback", body: `{"version":"x","force":true}`, status: 400, code: CodeInvalidRequest, contains: "force"},
		{name: "rollback malformed", method: "POST", uri: "/v1/admin/catalog/rollback", body: `{"version":`, status: 400, code: CodeInvalidRequest, contains: "malformed JSON"},
		{name: "rollback YAML", method: "POST", uri: "/v1/admin/catalog/rollback", body: `version: x`, header: []string{"Content-Type", "application/yaml"}, status: 415, code: CodeUnsupportedMediaType},
		{name: "upload empty", method: "POST", uri: "/v1/admin/catalog", body: " \n", header: []string{"Content-Type", "application/yaml"}, status: 400, code: CodeInvalidRequest, contains: "empty"},
		{name: "upload CSV", method: "POST", uri: "/v1/admin/catalog", body: "a,b", header: []string{"Content-Type", "text/csv"}, status: 415, code: CodeUnsupportedMediaType, contains: "application/yaml"},
		{name: "upload too large", method: "POST", uri: "/v1/admin/catalog", body: strings.Repeat("#", 4097), header: []string{"Content-Type", "application/yaml"}, status: 413, code: CodePayloadTooLarge},
		{name: "validate GET", method: "GET", uri: "/v1/admin/catalog/validate", status: 405, code: CodeMethodNotAllowed, allow: "POST"},
		{name: "versions POST", method: "POST", uri: "/v1/admin/catalog/versions", body: "{}", status: 405, code: CodeMethodNotAllowed, allow: "GET, HEAD"},
		{name: "catalog PUT", method: "PUT", uri: "/v1/admin/catalog", body: "{}", status: 405, code: CodeMethodNotAllowed, allow: "GET, HEAD, POST"},
		{name: "unknown route", method: "GET", uri: "/v1/admin/catalog/nothing", status: 404, code: CodeNotFound, contains: "no route"},
		{name: "unknown sibling", method: "GET", uri: "/v1/admin/catalogue", status: 404, code: CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(s, tt.method, tt.uri, tt.body, tt.header...)
			if r.status != tt.status {
				t.Fatalf("status: got %d, want %d (body %s)", r.status, tt.status, r.body)
			}
			code, msg := errorBody(t, r)
			if code != tt.code || !strings.Contains(msg, tt.contains) {
				t.Errorf("error: got %q %q, want %q containing %q", code, msg, tt.code, tt.contains)
			}
			if got := string(r.header.Peek("Allow")); got != tt.allow {
				t.Errorf("Allow: got %q, want %q", got, tt.allow)
			}
		})
	}
}

// TestAdminCatalogOff: without a CatalogAdmin the routes are not there.
func TestAdminCatalogOff(t *testing.T) {
	s := newTestServer(t, newFakeStore(), nil)
	r := do(s, "GET", "/v1/admin/catalog/versions", "")
	if code, msg := errorBody(t, r); r.status != 404 || code != CodeNotFound || !strings.Contains(msg, "off") {
		t.Errorf("got %d %q %q, want 404 saying it is off", r.status, code, msg)
	}
}

// TestAdminCatalogActor: a change is made in the name of the API key, and
// only a key with the admin scope may make one.
func TestAdminCatalogActor(t *testing.T) {
	kr, err := keys.Parse("keys.yaml", fmt.Appendf(nil, "keys:\n  - {name: ops, hash: %q, scopes: [admin]}\n  - {name: web, hash: %q, scopes: [decide]}\n",
		keys.Hash("nbk_ops"), keys.Hash("nbk_web")))
	if err != nil {
		t.Fatal(err)
	}
	var audit bytes.Buffer
	reg, err := catalogs.Open(catalogs.Options{Dir: t.TempDir(), Audit: catalogs.NewAudit(&audit)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	if _, err := reg.Start("testdata/catalog.yaml"); err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, newFakeStore(), func(o *testOptions) { o.Catalog, o.Admin, o.Keys = reg.Catalog(), reg, kr })
	_, second, bad := adminCatalogs(t)

	if r := do(s, "POST", "/v1/admin/catalog", string(second), "Content-Type", "application/yaml", "Authorization", "Bearer nbk_web"); r.status != 403 {
		t.Errorf("upload with a decide key: got %d %s, want 403", r.status, r.body)
	}
	if r := do(s, "POST", "/v1/admin/catalog", string(second), "Content-Type", "application/yaml"); r.status != 401 {
		t.Errorf("upload without a key: got %d %s, want 401", r.status, r.body)
	}
	if r := do(s, "POST", "/v1/admin/catalog", string(bad), "Content-Type", "application/yaml", "Authorization", "Bearer nbk_ops"); r.status != 422 {
		t.Errorf("bad upload with the admin key: got %d %s, want 422", r.status, r.body)
	}
	r := do(s, "POST", "/v1/admin/catalog", string(second), "Content-Type", "application/yaml", "Authorization", "Bearer nbk_ops")
	var got versionJSON
	decodeJSON(t, r, &got)
	if got.Actor != "ops" {
		t.Errorf("upload with the admin key: got actor %q, want ops", got.Actor)
	}
	var actions []string
	for _, line := range strings.Split(strings.TrimSpace(audit.String()), "\n") {
		var e catalogs.AuditEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		actions = append(actions, fmt.Sprintf("%s %s rejected=%v errors=%d", e.Action, e.Actor, e.Rejected, e.Errors))
	}
	want := []string{"catalog.startup startup rejected=false errors=0", "catalog.upload ops rejected=true errors=3", "catalog.upload ops rejected=false errors=0"}
	if strings.Join(actions, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\ngot  %q\nwant %q", actions, want)
	}
}

// failingAdmin is a registry that cannot persist.
type failingAdmin struct{ CatalogAdmin }

func (failingAdmin) Load([]byte, string) (catalogs.Version, error) {
	return catalogs.Version{}, errors.New("disk full")
}

func TestAdminCatalogInternalError(t *testing.T) {
	_, second, _ := adminCatalogs(t)
	s, reg := newAdminServer(t, nil)
	s.admin = failingAdmin{reg}
	r := do(s, "POST", "/v1/admin/catalog", string(second), "Content-Type", "application/yaml")
	if code, msg := errorBody(t, r); r.status != 500 || code != CodeInternal || strings.Contains(msg, "disk") {
		t.Errorf("got %d %q %q, want 500 without the cause", r.status, code, msg)
	}
}

// TestAdminCatalogExpect: a YAML upload sent with Expect: 100-continue
// is judged as YAML, not refused as a body that is not JSON.
func TestAdminCatalogExpect(t *testing.T) {
	s, _ := newAdminServer(t, func(o *testOptions) { o.MaxBodyBytes = 100 })
	tests := []struct {
		path, contentType string
		length            int
		want              int
	}{
		{"/v1/admin/catalog", "application/yaml", 100, fasthttp.StatusContinue},
		{"/v1/admin/catalog/validate", "application/x-yaml", 10, fasthttp.StatusContinue},
		{"/v1/admin/catalog/rollback", "application/json", 10, fasthttp.StatusContinue},
		{"/v1/admin/catalog", "application/yaml", 101, fasthttp.StatusRequestEntityTooLarge},
		{"/v1/admin/catalog", "image/png", 10, fasthttp.StatusUnsupportedMediaType},
		{"/v1/decide", "application/yaml", 10, fasthttp.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI(tt.path)
		ctx.Request.Header.SetContentType(tt.contentType)
		ctx.Request.Header.SetContentLength(tt.length)
		if got := s.HandleExpect(&ctx); got != tt.want {
			t.Errorf("%s %s %d: got %d, want %d", tt.path, tt.contentType, tt.length, got, tt.want)
		}
	}
}

// TestAdminCatalogPersisted: what the admin routes change survives a new
// registry on the same directory.
func TestAdminCatalogPersisted(t *testing.T) {
	_, second, _ := adminCatalogs(t)
	dir := t.TempDir()
	reg, err := catalogs.Open(catalogs.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Start("testdata/catalog.yaml"); err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, newFakeStore(), func(o *testOptions) { o.Catalog, o.Admin = reg.Catalog(), reg })
	if r := do(s, "POST", "/v1/admin/catalog", string(second), "Content-Type", "application/yaml"); r.status != 200 {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	reg, err = catalogs.Open(catalogs.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if _, err := reg.Start(filepath.Join("testdata", "catalog.yaml")); err != nil {
		t.Fatal(err)
	}
	s = newTestServer(t, newFakeStore(), func(o *testOptions) { o.Catalog, o.Admin = reg.Catalog(), reg })
	if v, h := decidedBy(t, s); v != catalogs.VersionOf(second) || h != "Hello again" {
		t.Errorf("after reopening: decided by %s %q, want the upload", v, h)
	}
}
