package httpapi

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest/internal/keys"
)

// routeProblems lists what is wrong with a route table: a row without a
// scope (or open), a metric label, a handler; a duplicate method and path;
// rows of one path that disagree on what the server needs before it knows
// the method (scope, label, admission class).
func routeProblems(table []routeSpec) []string {
	var bad []string
	seen := map[string]bool{}
	first := map[string]routeSpec{}
	for _, r := range table {
		id := r.method + " " + r.path
		switch {
		case r.scope == 0 && !r.open:
			bad = append(bad, id+": no scope (open routes say open: true)")
		case r.scope != 0 && r.open:
			bad = append(bad, id+": both a scope and open")
		}
		if r.label == "" || r.label == routeNames[routeOther] || !slices.Contains(routeNames[:], r.label) {
			bad = append(bad, fmt.Sprintf("%s: metric label %q is not one of routeNames (add it there)", id, r.label))
		}
		if r.class > classNone {
			bad = append(bad, id+": no admission class")
		}
		if r.handle == nil {
			bad = append(bad, id+": no handler")
		}
		if !slices.Contains([]string{"GET", "POST", "PUT", "DELETE"}, r.method) {
			bad = append(bad, id+": method is not GET, POST, PUT or DELETE")
		}
		if r.method == "GET" && r.body != bodyNone {
			bad = append(bad, id+": a GET takes no body")
		}
		if !strings.HasPrefix(r.path, "/") {
			bad = append(bad, id+": path does not start with /")
		}
		if seen[id] {
			bad = append(bad, id+": declared twice")
		}
		seen[id] = true
		if f, ok := first[r.path]; !ok {
			first[r.path] = r
		} else if f.scope != r.scope || f.open != r.open || f.label != r.label || f.class != r.class {
			bad = append(bad, id+": scope, label or class differs from "+f.method+" "+r.path)
		}
	}
	return bad
}

// TestRouteTable walks the route table: every route has a scope (or is open),
// a metric label and a handler, and no method and path is declared twice.
func TestRouteTable(t *testing.T) {
	for _, p := range routeProblems(routes) {
		t.Error(p)
	}
}

// TestRouteProblems checks the checker on a made-up table.
func TestRouteProblems(t *testing.T) {
	h := func(*Server, *fasthttp.RequestCtx, *keys.Key, time.Time) {}
	table := []routeSpec{
		{method: "POST", path: "/v1/ok", scope: keys.ScopeDecide, label: "decide", class: classDecide, body: bodyJSON, handle: h},
		{method: "POST", path: "/v1/noscope", label: "decide", class: classDecide, handle: h},
		{method: "POST", path: "/v1/nolabel", scope: keys.ScopeAdmin, class: classOther, handle: h},
		{method: "POST", path: "/v1/badlabel", scope: keys.ScopeAdmin, label: "decid", class: classOther, handle: h},
		{method: "POST", path: "/v1/ok", scope: keys.ScopeDecide, label: "decide", class: classDecide, body: bodyJSON, handle: h},
		{method: "GET", path: "/v1/ok", scope: keys.ScopeAdmin, label: "decide", class: classDecide, handle: h},
		{method: "GET", path: "/v1/nohandler", open: true, label: "health", class: classNone},
	}
	want := []string{
		"POST /v1/noscope: no scope (open routes say open: true)",
		`POST /v1/nolabel: metric label "" is not one of routeNames (add it there)`,
		`POST /v1/badlabel: metric label "decid" is not one of routeNames (add it there)`,
		"POST /v1/ok: declared twice",
		"GET /v1/ok: scope, label or class differs from POST /v1/ok",
		"GET /v1/nohandler: no handler",
	}
	if got := routeProblems(table); !slices.Equal(got, want) {
		t.Errorf("routeProblems =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLookup: each row is found by its method and a path it matches, GET
// rows by HEAD too, and a path no row has is unknown, needs admin and is
// labelled "admin" under /v1/admin/, "other" elsewhere.
func TestLookup(t *testing.T) {
	for i := range routes {
		r := &routes[i]
		path := strings.Replace(r.path, "{id}", "c-1", 1)
		ep := lookup([]byte(path))
		if got := ep.row([]byte(r.method)); got != r {
			t.Errorf("%s %s: found %v", r.method, path, got)
		}
		if r.method == "GET" && ep.row([]byte("HEAD")) != r {
			t.Errorf("HEAD %s: not served by the GET row", path)
		}
		if ep.label != labelOf(r.label) || routeNames[ep.label] != r.label {
			t.Errorf("%s %s: label %s, want %s", r.method, path, routeNames[ep.label], r.label)
		}
	}
	tests := []struct {
		path  string
		label string
		allow string
	}{
		{"/v1/decide", "decide", "POST"},
		{"/v1/customers/", "customers", "GET, HEAD, PUT, DELETE"},
		{"/v1/customers/c-1/merge", "customers", "POST"},
		{"/v1/customers/c-1/x/merge", "customers", "POST"}, // the id c-1/x (sent as c-1%2Fx)
		{"/v1/customers//merge", "customers", "GET, HEAD, PUT, DELETE"},
		{"/v1/customers/merge", "customers", "GET, HEAD, PUT, DELETE"}, // the customer called merge
		{"/v1/customers/c-1/timeline", "customers", "GET, HEAD"},
		{"/v1/customers/c-1/export", "customers", "GET, HEAD"},
		{"/v1/customers/c-1/exports", "customers", "GET, HEAD, PUT, DELETE"}, // the customer's handler refuses the id
		{"/v1/customers//timeline", "customers", "GET, HEAD, PUT, DELETE"},
		{"/v1/admin/catalog", "admin", "GET, HEAD, POST"},
		{"/healthz", "health", "GET, HEAD"},
		{"/v1/admin/nothing", "admin", ""},
		{"/v1/decide/x", "other", ""},
		{"/", "other", ""},
	}
	for _, tt := range tests {
		ep := lookup([]byte(tt.path))
		if routeNames[ep.label] != tt.label || ep.allow != tt.allow {
			t.Errorf("%s: label %q allow %q, want %q %q", tt.path, routeNames[ep.label], ep.allow, tt.label, tt.allow)
		}
		if !ep.known() && ep.scope != keys.ScopeAdmin {
			t.Errorf("%s: an unknown route needs %s, want admin", tt.path, ep.scope)
		}
	}
}

// BenchmarkLookup is what the route table costs a decision: finding the
// endpoint and the row of its method.
func BenchmarkLookup(b *testing.B) {
	path, method := []byte("/v1/decide"), []byte("POST")
	b.ReportAllocs()
	for b.Loop() {
		if lookup(path).row(method) == nil {
			b.Fatal("no route")
		}
	}
}
