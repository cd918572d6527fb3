package httpapi

import (
	"bytes"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest/internal/keys"
)

// The API-key domain (scopes, the keyring, the keys file, customer tokens)
// is package keys; this file is its HTTP side: the Authorization header,
// 401, 403 and 429, and CORS.

var bearer = []byte("Bearer ")

// authenticate checks the request's key for scope need: its presence (401),
// its scope and, for a public key used from a browser, its origin (403),
// and the rate of a key that is not public (429; a public key's rates are
// checked by admitPublic). It writes the error and returns nil, or returns
// the key, having set the CORS headers a browser needs.
func (s *Server) authenticate(ctx *fasthttp.RequestCtx, need keys.Scope) *keys.Key {
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	token, ok := bytes.CutPrefix(h, bearer)
	if !ok || len(token) == 0 {
		s.unauthorized.Inc()
		writeError(ctx, &apiError{code: CodeUnauthorized, msg: "missing API key: send Authorization: Bearer <key>"})
		return nil
	}
	key := s.keys.Lookup(token)
	if key == nil {
		s.unauthorized.Inc()
		writeError(ctx, &apiError{code: CodeUnauthorized, msg: "unknown API key"})
		return nil
	}
	if origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin); len(origin) > 0 && key.Public {
		if !key.AllowsOrigin(origin) {
			s.forbidden.Inc()
			writeError(ctx, &apiError{code: CodeForbidden, msg: fmt.Sprintf("origin %q is not allowed for key %q", origin, key.Name)})
			return nil
		}
		ctx.Response.Header.SetBytesV(fasthttp.HeaderAccessControlAllowOrigin, origin)
		ctx.Response.Header.Set(fasthttp.HeaderVary, "Origin")
	}
	if key.Scopes&need == 0 {
		s.forbidden.Inc()
		writeError(ctx, &apiError{code: CodeForbidden, msg: fmt.Sprintf("key %q does not have the %s scope", key.Name, need)})
		return nil
	}
	if key.Public {
		// Limited per client as well, once the body says who the client
		// is: the handler calls admitPublic.
		return key
	}
	if ok, retry := key.Allow(time.Now()); !ok {
		s.tooManyRequests(ctx, fmt.Sprintf("key %q is over its rate of %g requests per second", key.Name, key.Rate), retry)
		return nil
	}
	return key
}

// preflight answers a browser's CORS preflight (OPTIONS): allowed for an
// origin some public key lists, for the routes public keys may call (ep's
// scope is one a public key may hold). It never allows credentials and
// never answers with a wildcard.
func (s *Server) preflight(ctx *fasthttp.RequestCtx, ep *endpoint) {
	origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
	route := ep.known() && !ep.open && ep.scope.Public()
	if len(origin) == 0 || !route || !s.keys.PublicOrigin(origin) {
		s.forbidden.Inc()
		writeError(ctx, &apiError{code: CodeForbidden, msg: "CORS preflight refused: the origin is not allowed for this route"})
		return
	}
	h := &ctx.Response.Header
	h.SetBytesV(fasthttp.HeaderAccessControlAllowOrigin, origin)
	h.Set(fasthttp.HeaderAccessControlAllowMethods, "POST, OPTIONS")
	h.Set(fasthttp.HeaderAccessControlAllowHeaders, "Authorization, Content-Type")
	h.Set(fasthttp.HeaderAccessControlMaxAge, "600")
	h.Set(fasthttp.HeaderVary, "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
