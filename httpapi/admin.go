package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/internal/keys"
	"github.com/nextbest/nextbest/rules"
)

// CatalogAdmin changes the catalog in force: what the routes under
// /v1/admin/catalog need (nextbest.CatalogAdmin).
type CatalogAdmin = nextbest.CatalogAdmin

// actorOf names who makes an admin change: the API key's name, or
// "anonymous" when access control is off.
func actorOf(key *keys.Key) string {
	if key == nil {
		return "anonymous"
	}
	return key.Name
}

// The catalog administration routes (routes.go) act on behalf of the
// caller's API key (actorOf):
//
//	GET  /v1/admin/catalog           the version in force
//	POST /v1/admin/catalog           put the YAML body in force
//	POST /v1/admin/catalog/validate  check the YAML body, change nothing
//	GET  /v1/admin/catalog/versions  the versions kept, newest first
//	POST /v1/admin/catalog/rollback  {"version":"..."} back in force
//
// A catalog with problems gets 422 with every one of them, and the
// catalog in force keeps serving.

// adminOff answers 404 when the server has no catalog administration.
func (s *Server) adminOff(ctx *fasthttp.RequestCtx) bool {
	if s.admin == nil {
		writeError(ctx, &apiError{code: CodeNotFound, msg: "catalog administration is off on this server"})
		return true
	}
	return false
}

func (s *Server) catalogActive(ctx *fasthttp.RequestCtx, _ *keys.Key, _ time.Time) {
	if !s.adminOff(ctx) {
		writeJSON(ctx, versionBody(s.admin.Active()))
	}
}

func (s *Server) catalogLoad(ctx *fasthttp.RequestCtx, key *keys.Key, _ time.Time) {
	if s.adminOff(ctx) {
		return
	}
	if src, ok := catalogBody(ctx); ok {
		v, err := s.admin.Load(src, actorOf(key))
		s.answerCatalog(ctx, v, err)
	}
}

func (s *Server) catalogValidate(ctx *fasthttp.RequestCtx, _ *keys.Key, _ time.Time) {
	if s.adminOff(ctx) {
		return
	}
	src, ok := catalogBody(ctx)
	if !ok {
		return
	}
	if err := s.admin.Validate(src); err != nil {
		s.answerCatalog(ctx, nextbest.CatalogVersion{}, err)
		return
	}
	writeJSON(ctx, struct {
		Valid   bool   `json:"valid"`
		Version string `json:"version"`
	}{true, nextbest.CatalogVersionOf(src)})
}

func (s *Server) catalogVersions(ctx *fasthttp.RequestCtx, _ *keys.Key, _ time.Time) {
	if s.adminOff(ctx) {
		return
	}
	vs, active := s.admin.Versions(), s.admin.Active().ID
	body := struct {
		Active   string        `json:"active"`
		Versions []versionJSON `json:"versions"`
	}{active, make([]versionJSON, len(vs))}
	for i, v := range vs {
		body.Versions[i] = versionBody(v)
		body.Versions[i].Active = v.ID == active
	}
	writeJSON(ctx, body)
}

func (s *Server) catalogRollback(ctx *fasthttp.RequestCtx, key *keys.Key, _ time.Time) {
	if s.adminOff(ctx) {
		return
	}
	version, err := parseRollback(ctx.PostBody())
	if err != nil {
		writeError(ctx, err)
		return
	}
	v, err := s.admin.Rollback(version, actorOf(key))
	s.answerCatalog(ctx, v, err)
}

// versionJSON is a catalog version as the admin routes answer it.
type versionJSON struct {
	Version  string    `json:"version"`
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`
	Previous string    `json:"previous,omitempty"`
	Active   bool      `json:"active"`
}

func versionBody(v nextbest.CatalogVersion) versionJSON {
	return versionJSON{Version: v.ID, Time: v.Time, Actor: v.Actor, Previous: v.Previous, Active: true}
}

// answerCatalog answers a change: the version now in force, or why not.
func (s *Server) answerCatalog(ctx *fasthttp.RequestCtx, v nextbest.CatalogVersion, err error) {
	var errs rules.Errors
	switch {
	case err == nil:
		writeJSON(ctx, versionBody(v))
	case errors.As(err, &errs):
		writeCatalogErrors(ctx, errs)
	case errors.Is(err, nextbest.ErrUnknownCatalogVersion):
		writeError(ctx, &apiError{code: CodeNotFound, msg: err.Error()})
	default:
		s.log.Error("catalog change", "err", err)
		writeError(ctx, errInternal)
	}
}

// catalogBody returns the catalog a request carries, or answers why it
// cannot be read. Its media type and size were checked by the route's
// body kind (bodyYAML, checkCatalogBody).
func catalogBody(ctx *fasthttp.RequestCtx) ([]byte, bool) {
	body := ctx.PostBody()
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(ctx, invalid("request body is empty; send the catalog's YAML"))
		return nil, false
	}
	return body, true
}

// checkCatalogBody checks a catalog's media type and size, as checkBody
// does for JSON: YAML (application/yaml, application/x-yaml, text/yaml,
// text/x-yaml), text/plain, none, or JSON, which is YAML too.
func (s *Server) checkCatalogBody(contentType []byte, size int) *apiError {
	if len(contentType) > 0 && !isJSON(contentType) && !isYAML(contentType) {
		return &apiError{code: CodeUnsupportedMediaType, msg: fmt.Sprintf("content type %q is not YAML; send application/yaml", contentType)}
	}
	if size > s.maxBody {
		return tooLarge(s.maxBody)
	}
	return nil
}

func isYAML(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	for _, t := range []string{"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"} {
		if bytes.EqualFold(ct, []byte(t)) {
			return true
		}
	}
	return false
}

var rollbackFields = []string{"version"}

// parseRollback parses {"version":"..."}.
func parseRollback(body []byte) (string, error) {
	p := parsers.Get()
	defer parsers.Put(p)
	o, err := parseObject(p, body)
	if err != nil {
		return "", err
	}
	if countFields(o, rollbackFields) != o.Len() {
		return "", fieldsError(o, rollbackFields)
	}
	v, err := requiredString("version", o.Get("version"))
	if err != nil {
		return "", err
	}
	return string(v), nil
}

// catalogErrorJSON is one problem of a catalog, located for its author.
type catalogErrorJSON struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Object  string `json:"object,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// writeCatalogErrors answers 422 with the usual error body plus every
// problem of the catalog under "errors".
func writeCatalogErrors(ctx *fasthttp.RequestCtx, errs rules.Errors) {
	ae := &apiError{code: CodeInvalidCatalog, msg: fmt.Sprintf("the catalog has %d %s; the catalog in force is unchanged", len(errs), plural(len(errs), "error", "errors"))}
	list := make([]catalogErrorJSON, len(errs))
	for i, e := range errs {
		list[i] = catalogErrorJSON{File: e.File, Line: e.Line, Column: e.Column, Object: e.Object, Field: e.Field, Message: e.Msg}
	}
	var body struct {
		Error struct {
			Code    string             `json:"code"`
			Message string             `json:"message"`
			Errors  []catalogErrorJSON `json:"errors"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message, body.Error.Errors = ae.code, ae.msg, list
	writeJSON(ctx, body)
	ctx.SetStatusCode(ae.status())
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// writeJSON answers 200 with v as JSON.
func writeJSON(ctx *fasthttp.RequestCtx, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(ctx, errInternal)
		return
	}
	ctx.SetContentType(contentTypeJSON)
	ctx.SetBody(append(b, '\n'))
}
