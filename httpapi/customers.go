package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/keys"
)

// customerPut serves PUT /v1/customers/{id}: a profile update.
func (s *Server) customerPut(ctx *fasthttp.RequestCtx, _ *keys.Key, _ time.Time) {
	id, err := customerPathID(ctx.URI().PathOriginal())
	if err != nil {
		writeError(ctx, err)
		return
	}
	p := parsers.Get()
	attrs, err := parseAttrs(p, ctx.PostBody(), s.svc.Catalog().Schema)
	parsers.Put(p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	prof, err := s.svc.SetProfile(context.Background(), id, attrs)
	var refused *nextbest.RequestError
	if errors.As(err, &refused) {
		writeError(ctx, err)
		return
	}
	if err != nil {
		s.storeErrs.error("mutate", err)
		writeError(ctx, errStoreWrite)
		return
	}
	writeCustomer(ctx, prof)
}

// customerGet serves GET /v1/customers/{id}: the customer's features.
func (s *Server) customerGet(ctx *fasthttp.RequestCtx, _ *keys.Key, _ time.Time) {
	id, err := customerPathID(ctx.URI().PathOriginal())
	if err != nil {
		writeError(ctx, err)
		return
	}
	prof, err := s.svc.Profile(context.Background(), id)
	if err != nil {
		s.storeErrs.error("load", err)
		writeError(ctx, &apiError{code: CodeStoreUnavailable, msg: "feature store unavailable; retry"})
		return
	}
	writeCustomer(ctx, prof)
}

func writeCustomer(ctx *fasthttp.RequestCtx, p *nextbest.Profile) {
	b := AppendCustomer(make([]byte, 0, 512), p.CustomerID, p.Known, p.Schema, p.Features)
	if p.History != nil {
		// The contact history's summary goes inside the object.
		b = append(b[:len(b)-1], `,"contact_history":`...)
		b = appendContactHistory(b, p.History)
		b = append(b, '}')
	}
	ctx.SetContentType(contentTypeJSON)
	ctx.SetBody(append(b, '\n'))
}

// customerPathID returns the {id} of /v1/customers/{id} from the request's
// original (not normalised) path, so an id may hold an escaped slash.
func customerPathID(path []byte) (string, error) {
	rest, ok := bytes.CutPrefix(path, []byte(customersPrefix))
	if !ok || bytes.IndexByte(rest, '/') >= 0 {
		return "", &apiError{code: CodeNotFound, msg: fmt.Sprintf("no route for %s", path)}
	}
	id, err := url.PathUnescape(string(rest))
	switch {
	case err != nil:
		return "", invalid("customer id: %v", err)
	case id == "":
		return "", invalid("customer id: is required")
	case len(id) > maxIDLen:
		return "", invalid("customer id: longer than %d bytes", maxIDLen)
	case !utf8.ValidString(id):
		return "", invalid("customer id: not valid UTF-8")
	}
	return id, nil
}

// parseAttrs parses a profile update {"features": {...}}, checking every
// feature against schema: it must exist, be a profile attribute (not
// derived from events) and have the feature's type. null resets a feature
// to its default.
func parseAttrs(p *fastjson.Parser, body []byte, schema *featurestore.Schema) (map[string]featurestore.Value, error) {
	o, err := parseObject(p, body)
	if err != nil {
		return nil, err
	}
	if countFields(o, attrsFields) != o.Len() {
		return nil, fieldsError(o, attrsFields)
	}
	fv := o.Get("features")
	if fv == nil {
		return nil, invalid("features: is required")
	}
	return featureAttrs(fv, schema)
}

// featureAttrs checks the "features" object of a profile update (PUT
// /v1/customers/{id}, a line of POST /v1/customers:import) against schema
// and returns the attributes it sets.
func featureAttrs(fv *fastjson.Value, schema *featurestore.Schema) (map[string]featurestore.Value, error) {
	fo, err := fv.Object()
	if err != nil {
		return nil, invalid("features: must be an object, got %s", kind(fv))
	}
	attrs := make(map[string]featurestore.Value, fo.Len())
	fo.Visit(func(key []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		name := string(key)
		f, ok := schema.Lookup(name)
		switch {
		case !ok:
			err = invalid("features.%s: unknown feature", name)
			return
		case f.From != nil:
			err = invalid("features.%s: is derived from %q events and cannot be set", name, f.From.Event)
			return
		case v.Type() == fastjson.TypeNull:
			attrs[name] = f.Default
			return
		}
		x, cerr := plain(v)
		if cerr != nil {
			err = invalid("features.%s: %v", name, cerr)
			return
		}
		val, cerr := featurestore.Coerce(f.Type, x)
		if cerr != nil {
			err = invalid("features.%s: %v", name, cerr)
			return
		}
		attrs[name] = val
	})
	if err != nil {
		return nil, err
	}
	return attrs, nil
}

var attrsFields = []string{"features"}

// customerAllow is the Allow header of /v1/customers/{id} (set once the
// route table is built: the table refers to the handlers).
var customerAllow string

func init() { customerAllow = lookup([]byte("/v1/customers/x")).allow }

// customerMerge serves POST /v1/customers/{id}/merge {"from": "anon-7f3a"}:
// the customer from is folded into the customer {id} and becomes its
// alias (nextbest.Service.Merge). It answers {id}'s profile after the
// merge, the same for a retry of a merge done.
func (s *Server) customerMerge(ctx *fasthttp.RequestCtx, _ *keys.Key, _ time.Time) {
	path, found := bytes.CutSuffix(ctx.URI().PathOriginal(), []byte(mergeSuffix))
	if !found {
		// The customer whose id ends in an escaped "/merge": their
		// endpoint takes no POST.
		s.notAllowed(ctx, customerAllow)
		return
	}
	id, err := customerPathID(path)
	if err != nil {
		writeError(ctx, err)
		return
	}
	p := parsers.Get()
	from, err := parseMerge(p, ctx.PostBody())
	parsers.Put(p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	prof, err := s.svc.Merge(context.Background(), id, from)
	var refused *nextbest.RequestError
	var conflict *nextbest.ConflictError
	switch {
	case errors.As(err, &refused):
		writeError(ctx, err)
		return
	case errors.As(err, &conflict):
		writeError(ctx, &apiError{code: CodeConflict, msg: conflict.Error()})
		return
	case err != nil:
		s.storeErrs.error("merge", err)
		writeError(ctx, errStoreWrite)
		return
	}
	writeCustomer(ctx, prof)
}

const mergeSuffix = "/merge"

var mergeFields = []string{"from"}

// parseMerge parses {"from": "<customer id>"}.
func parseMerge(p *fastjson.Parser, body []byte) (string, error) {
	o, err := parseObject(p, body)
	if err != nil {
		return "", err
	}
	if countFields(o, mergeFields) != o.Len() {
		return "", fieldsError(o, mergeFields)
	}
	v := o.Get("from")
	if v == nil {
		return "", invalid("from: is required")
	}
	b, err := v.StringBytes()
	switch {
	case err != nil:
		return "", invalid("from: must be a string (a customer id), got %s", kind(v))
	case len(b) == 0:
		return "", invalid("from: is required")
	case len(b) > maxIDLen:
		return "", invalid("from: longer than %d bytes", maxIDLen)
	case !utf8.Valid(b):
		return "", invalid("from: not valid UTF-8")
	}
	return string(b), nil
}
