package httpapi

import (
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/internal/jsonenc"
)

// Error codes of the JSON error body {"error":{"code":...,"message":...}}.
// Each maps to one HTTP status in apiError.status.
const (
	CodeInvalidRequest       = "invalid_request"        // 400
	CodeUnauthorized         = "unauthorized"           // 401
	CodeForbidden            = "forbidden"              // 403
	CodeNotFound             = "not_found"              // 404
	CodeConflict             = "conflict"               // 409
	CodeMethodNotAllowed     = "method_not_allowed"     // 405
	CodeRequestTimeout       = "request_timeout"        // 408
	CodePayloadTooLarge      = "payload_too_large"      // 413
	CodeUnsupportedMediaType = "unsupported_media_type" // 415
	CodeInvalidCatalog       = "invalid_catalog"        // 422
	CodeHeadersTooLarge      = "headers_too_large"      // 431
	CodeRateLimited          = "rate_limited"           // 429
	CodeInternal             = "internal"               // 500
	CodeStoreUnavailable     = "store_unavailable"      // 503
	CodeNotReady             = "not_ready"              // 503
	CodeOverloaded           = "overloaded"             // 503, with Retry-After
)

// apiError is an error a client sees: a code and a message written for
// the caller. Handlers return them; writeError is the one place that turns
// them into a status and a body.
type apiError struct {
	code string
	msg  string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func (e *apiError) status() int {
	switch e.code {
	case CodeInvalidRequest:
		return fasthttp.StatusBadRequest
	case CodeUnauthorized:
		return fasthttp.StatusUnauthorized
	case CodeForbidden:
		return fasthttp.StatusForbidden
	case CodeRateLimited:
		return fasthttp.StatusTooManyRequests
	case CodeNotFound:
		return fasthttp.StatusNotFound
	case CodeConflict:
		return fasthttp.StatusConflict
	case CodeMethodNotAllowed:
		return fasthttp.StatusMethodNotAllowed
	case CodeRequestTimeout:
		return fasthttp.StatusRequestTimeout
	case CodePayloadTooLarge:
		return fasthttp.StatusRequestEntityTooLarge
	case CodeUnsupportedMediaType:
		return fasthttp.StatusUnsupportedMediaType
	case CodeInvalidCatalog:
		return fasthttp.StatusUnprocessableEntity
	case CodeHeadersTooLarge:
		return fasthttp.StatusRequestHeaderFieldsTooLarge
	case CodeStoreUnavailable, CodeNotReady, CodeOverloaded:
		return fasthttp.StatusServiceUnavailable
	}
	return fasthttp.StatusInternalServerError
}

func invalid(format string, args ...any) *apiError {
	return &apiError{code: CodeInvalidRequest, msg: fmt.Sprintf(format, args...)}
}

// eventError is the error a client sees for an event the service
// refused, worded as the parser's errors are: "events[3].offer_id: ..."
// in a list, "offer_id: ..." for a request of one event object.
func eventError(e *nextbest.EventError, single bool) *apiError {
	if single {
		return invalid("%s: %s", e.Field, e.Reason)
	}
	return invalid("events[%d].%s: %s", e.Index, e.Field, e.Reason)
}

// errInternal hides the cause (which is logged) from the client.
var errInternal = &apiError{code: CodeInternal, msg: "internal error"}

// writeError writes err as the response. The service's refusals
// (*nextbest.EventError, *nextbest.RequestError) are invalid requests; any
// other error that is not an *apiError is an internal one.
func writeError(ctx *fasthttp.RequestCtx, err error) {
	var ae *apiError
	var ee *nextbest.EventError
	var re *nextbest.RequestError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &ee):
		ae = eventError(ee, false)
	case errors.As(err, &re):
		ae = invalid("%s: %s", re.Field, re.Reason)
	default:
		ae = errInternal
	}
	ctx.Response.ResetBody()
	ctx.SetStatusCode(ae.status())
	ctx.SetContentType(contentTypeJSON)
	switch ae.code {
	case CodeStoreUnavailable, CodeOverloaded:
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
	case CodeUnauthorized:
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="nextbest"`)
	}
	b := make([]byte, 0, 64+len(ae.msg))
	b = append(b, `{"error":{"code":`...)
	b = jsonenc.AppendString(b, ae.code)
	b = append(b, `,"message":`...)
	b = jsonenc.AppendString(b, ae.msg)
	b = append(b, "}}\n"...)
	ctx.SetBody(b)
}

const contentTypeJSON = "application/json"
