package httpapi_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/httpapi"
	"github.com/nextbest/nextbest/rules"
)

// memStore is the smallest RecordStore: one record per customer in a map.
type memStore map[string]*featurestore.Record

func (m memStore) Load(_ context.Context, id string) (*featurestore.Record, error) {
	if r, ok := m[id]; ok {
		return r, nil
	}
	return nil, featurestore.ErrNotFound
}

func (m memStore) Mutate(_ context.Context, muts []featurestore.Mutation) ([]*featurestore.Record, error) {
	out := make([]*featurestore.Record, len(muts))
	for i, mut := range muts {
		r := m[mut.CustomerID].Clone()
		mut.Apply(r)
		m[mut.CustomerID], out[i] = r, r
	}
	return out, nil
}

func Example() {
	cat, err := rules.Load("catalog.yaml", []byte(`
channels: [web]
features:
  tier:      {type: string, default: none}
  purchases: {type: number, from: {event: purchase, op: count}}
offers:
  - id: thanks
    channels: [web]
    eligible: customer.purchases > 0
    content:
      web: {headline: "Thank you"}
`))
	if err != nil {
		panic(err)
	}
	var catalog atomic.Pointer[rules.Catalog]
	catalog.Store(cat)
	svc, err := nextbest.New(nextbest.Options{
		Catalog: &catalog,
		Store:   memStore{},
		Now:     func() time.Time { return time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		panic(err)
	}
	srv, err := httpapi.New(httpapi.Options{Service: svc})
	if err != nil {
		panic(err)
	}
	handle := srv.Handler()
	call := func(method, uri, body string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(uri)
		ctx.Request.SetBodyString(body)
		handle(&ctx)
		fmt.Printf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	call("POST", "/v1/events", `{"customer_id":"c-1","type":"purchase"}`)
	call("PUT", "/v1/customers/c-1", `{"features":{"tier":"gold"}}`)
	call("PUT", "/v1/customers/c-1", `{"features":{"purchases":3}}`)
	call("GET", "/v1/customers/c-2", "")
	// Output:
	// 202 {"accepted":1,"ignored":0}
	// 200 {"customer_id":"c-1","known":true,"features":{"tier":"gold","purchases":1}}
	// 400 {"error":{"code":"invalid_request","message":"features.purchases: is derived from \"purchase\" events and cannot be set"}}
	// 200 {"customer_id":"c-2","known":false,"features":{"tier":"none","purchases":0}}
}
