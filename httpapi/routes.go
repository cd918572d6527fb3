package httpapi

import (
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest/internal/keys"
)

// routes is the API: every endpoint is one row, and everything the server
// knows about a route is derived from this table — dispatch (serve), the
// metric label (routeNames), the scope its key needs (authenticate), its
// admission class, the body it accepts (and so how HandleExpect judges an
// upload), the Allow header of a 405 and the routes a CORS preflight may
// open. TestRoutes walks it. Adding an endpoint is one row and its
// handler (see the package doc).
var routes = []routeSpec{
	// The decision path first: it is the hot one.
	{method: "POST", path: "/v1/decide", scope: keys.ScopeDecide, label: "decide", class: classDecide, body: bodyJSON, handle: (*Server).decide},
	{method: "POST", path: "/v1/events", scope: keys.ScopeEvents, label: "events", class: classEvents, body: bodyJSON, handle: (*Server).eventsRoute},
	{method: "GET", path: "/v1/customers/{id}", scope: keys.ScopeProfiles, label: "customers", class: classOther, body: bodyNone, handle: (*Server).customerGet},
	{method: "PUT", path: "/v1/customers/{id}", scope: keys.ScopeProfiles, label: "customers", class: classOther, body: bodyJSON, handle: (*Server).customerPut},
	{method: "POST", path: "/v1/customers/{id}/merge", scope: keys.ScopeProfiles, label: "customers", class: classOther, body: bodyJSON, handle: (*Server).customerMerge},
	{method: "POST", path: "/v1/customers:import", scope: keys.ScopeAdmin, label: "admin", class: classOther, body: bodyNDJSON, handle: (*Server).customersImport},
	// Issue 13: a batch of decisions (an outbound campaign), streamed;
	// the decide scope, as each of its decisions is one.
	{method: "POST", path: batchPath, scope: keys.ScopeDecide, label: "batch", class: classOther, body: bodyJSON, handle: (*Server).decideBatch},
	{method: "GET", path: "/v1/stats", scope: keys.ScopeAdmin, label: "stats", class: classOther, body: bodyNone, handle: (*Server).statsRoute},
	{method: "GET", path: "/v1/admin/catalog", scope: keys.ScopeAdmin, label: "admin", class: classOther, body: bodyNone, handle: (*Server).catalogActive},
	{method: "POST", path: "/v1/admin/catalog", scope: keys.ScopeAdmin, label: "admin", class: classOther, body: bodyYAML, handle: (*Server).catalogLoad},
	{method: "POST", path: "/v1/admin/catalog/validate", scope: keys.ScopeAdmin, label: "admin", class: classOther, body: bodyYAML, handle: (*Server).catalogValidate},
	{method: "GET", path: "/v1/admin/catalog/versions", scope: keys.ScopeAdmin, label: "admin", class: classOther, body: bodyNone, handle: (*Server).catalogVersions},
	{method: "POST", path: "/v1/admin/catalog/rollback", scope: keys.ScopeAdmin, label: "admin", class: classOther, body: bodyJSON, handle: (*Server).catalogRollback},
	{method: "GET", path: "/healthz", open: true, label: "health", class: classNone, body: bodyNone, handle: (*Server).healthz},
	{method: "GET", path: "/readyz", open: true, label: "health", class: classNone, body: bodyNone, handle: (*Server).readyzRoute},
	{method: "GET", path: "/metrics", scope: keys.ScopeAdmin, label: "metrics", class: classNone, body: bodyNone, handle: (*Server).metricsRoute},
	// A customer's journey and their right to be forgotten (journey.go).
	{method: "GET", path: "/v1/customers/{id}/timeline", scope: keys.ScopeProfiles, label: "customers", class: classOther, body: bodyNone, handle: (*Server).customerTimeline},
	{method: "GET", path: "/v1/customers/{id}/export", scope: keys.ScopeProfiles, label: "customers", class: classOther, body: bodyNone, handle: (*Server).customerExport},
	{method: "DELETE", path: "/v1/customers/{id}", scope: keys.ScopeProfiles, label: "customers", class: classOther, body: bodyNone, handle: (*Server).customerDelete},
	// Issue 14: one logged decision, with its offers' propensities
	// (decisions.go).
	{method: "GET", path: "/v1/decisions/{id}", scope: keys.ScopeAdmin, label: "admin", class: classOther, body: bodyNone, handle: (*Server).decisionGet},
	// Issue 14: a logged decision decided again, on its catalog version
	// and a proposed one (replay.go).
	{method: "POST", path: "/v1/admin/replay", scope: keys.ScopeAdmin, label: "admin", class: classOther, body: bodyJSON, handle: (*Server).replayRoute},
}

// routeSpec is one row of routes: a method on a path.
type routeSpec struct {
	// method is GET (which serves HEAD too), POST, PUT or DELETE.
	method string
	// path is exact, or ends in "/{name}" for any rest after that slash,
	// or holds "/{name}/" followed by a literal rest (the handler reads
	// and checks the {name} part).
	path string
	// scope is what the caller's key needs; open routes (health checks)
	// need no key and say so.
	scope keys.Scope
	open  bool
	// label is the route's metric label, one of routeNames.
	label string
	// class is its admission class; classNone: never shed.
	class class
	// body is what the request carries, checked before the handler runs.
	body   bodyKind
	handle handler
}

// handler serves one route once the key, admission, method and body's
// media type and size are checked. key is nil when access control is off.
type handler func(s *Server, ctx *fasthttp.RequestCtx, key *keys.Key, start time.Time)

// bodyKind is what a route reads from the request body.
type bodyKind uint8

const (
	bodyNone   bodyKind = iota // no body is read
	bodyJSON                   // JSON, at most Options.MaxBodyBytes (checkBody)
	bodyYAML                   // a catalog: YAML or JSON (checkCatalogBody)
	bodyNDJSON                 // an import: streamed, at most Options.MaxImportBytes (checkImportBody)
)

// classNone marks a route admission control never sheds (health checks,
// metrics): an overloaded server must still say how it is.
const classNone = numClasses

// endpoint is one path of the table with what all its methods share,
// which is what the server needs before it knows the method is right.
type endpoint struct {
	path   string // "/v1/customers/" for "/v1/customers/{id}"
	prefix bool
	// suffix is what follows the {name} part ("/merge" for
	// "/v1/customers/{id}/merge"); "" for none.
	suffix string
	scope  keys.Scope
	open   bool
	label  route
	class  class
	allow  string // the Allow header: "GET, HEAD, PUT"
	rows   []*routeSpec
}

// endpoints are the table by path, built once, in the table's order: a
// scan that finds /v1/decide first costs a decision about 1 ns, where a
// map lookup cost 10 (BenchmarkLookup).
var endpoints = buildEndpoints(routes)

func buildEndpoints(table []routeSpec) []*endpoint {
	var eps []*endpoint
	byPath := map[string]*endpoint{}
	for i := range table {
		r := &table[i]
		path, prefix, suffix := r.path, false, ""
		if j := strings.LastIndexByte(path, '/'); j >= 0 && strings.HasPrefix(path[j:], "/{") && strings.HasSuffix(path, "}") {
			path, prefix = path[:j+1], true
		} else if j := strings.Index(path, "/{"); j >= 0 {
			if k := strings.Index(path[j:], "}/"); k >= 0 {
				path, prefix, suffix = path[:j+1], true, path[j+k+1:]
			}
		}
		ep := byPath[path+suffix]
		if ep == nil {
			ep = &endpoint{path: path, prefix: prefix, suffix: suffix, scope: r.scope, open: r.open, label: labelOf(r.label), class: r.class}
			byPath[path+suffix] = ep
			if suffix != "" {
				// Before the endpoint of the same prefix with no
				// suffix, which would take its paths too.
				at := slices.IndexFunc(eps, func(e *endpoint) bool { return e.prefix && e.suffix == "" && e.path == path })
				if at < 0 {
					at = len(eps)
				}
				eps = slices.Insert(eps, at, ep)
			} else {
				eps = append(eps, ep)
			}
		}
		ep.rows = append(ep.rows, r)
		m := r.method
		if m == "GET" {
			m = "GET, HEAD"
		}
		if ep.allow != "" {
			m = ep.allow + ", " + m
		}
		ep.allow = m
	}
	return eps
}

// labelOf is the route of a metric label; TestRoutes checks every row's
// is one of routeNames.
func labelOf(name string) route {
	for r, n := range routeNames {
		if n == name {
			return route(r)
		}
	}
	return routeOther
}

// unknown is the endpoint of a path no row has: it needs the admin scope
// (no key learns which routes exist without it), is labelled "admin"
// under /v1/admin/ and "other" elsewhere, and answers 404.
var (
	unknown      = &endpoint{scope: keys.ScopeAdmin, label: routeOther, class: classOther}
	unknownAdmin = &endpoint{scope: keys.ScopeAdmin, label: routeAdmin, class: classOther}
)

// lookup returns the endpoint of path, unknown or unknownAdmin if none.
func lookup(path []byte) *endpoint {
	for _, ep := range endpoints {
		if (string(path) == ep.path && ep.suffix == "") || (ep.prefix && len(path) >= len(ep.path) && string(path[:len(ep.path)]) == ep.path && ep.suffixOf(path)) {
			return ep
		}
	}
	if len(path) >= len("/v1/admin/") && string(path[:len("/v1/admin/")]) == "/v1/admin/" {
		return unknownAdmin
	}
	return unknown
}

// suffixOf reports whether path, which starts with ep.path, ends with
// ep.suffix after a non-empty {name} part. path is unescaped, so the
// {name} part may hold a slash (a customer id "c/1" sent as c%2F1); and
// an id ending in an escaped "/merge" looks like the suffix: the handler
// checks the path as sent (customerSubID).
func (ep *endpoint) suffixOf(path []byte) bool {
	if ep.suffix == "" {
		return true
	}
	rest := path[len(ep.path):]
	return len(rest) > len(ep.suffix) && string(rest[len(rest)-len(ep.suffix):]) == ep.suffix
}

// known reports whether ep is a path of the table.
func (ep *endpoint) known() bool { return len(ep.rows) > 0 }

// row returns the row of ep for the request's method, nil if none.
func (ep *endpoint) row(method []byte) *routeSpec {
	for _, r := range ep.rows {
		if string(method) == r.method || (r.method == "GET" && string(method) == "HEAD") {
			return r
		}
	}
	return nil
}

// checkBodyOf judges a body of kind k on its media type and size.
func (s *Server) checkBodyOf(k bodyKind, contentType []byte, size int) *apiError {
	if k == bodyYAML {
		return s.checkCatalogBody(contentType, size)
	}
	if k == bodyNDJSON {
		return s.checkImportBody(contentType, size)
	}
	return s.checkBody(contentType, size)
}

// The handlers of the routes that need nothing but the server.

func (s *Server) eventsRoute(ctx *fasthttp.RequestCtx, key *keys.Key, _ time.Time) {
	s.events(ctx, key)
}

func (s *Server) statsRoute(ctx *fasthttp.RequestCtx, _ *keys.Key, _ time.Time) {
	s.statsHandler(ctx)
}

func (s *Server) healthz(ctx *fasthttp.RequestCtx, _ *keys.Key, _ time.Time) {
	ctx.SetContentType(contentTypeJSON)
	ctx.SetBodyString(`{"status":"ok"}` + "\n")
}

func (s *Server) readyzRoute(ctx *fasthttp.RequestCtx, _ *keys.Key, _ time.Time) {
	s.readyz(ctx)
}

func (s *Server) metricsRoute(ctx *fasthttp.RequestCtx, _ *keys.Key, _ time.Time) {
	ctx.SetContentType("text/plain; version=0.0.4")
	s.WriteMetrics(ctx)
}
