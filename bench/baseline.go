package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"
)

// The baseline is the physical limit of "a JSON API on this machine": a
// fasthttp server that parses the request body as JSON, reads the fields a
// decision needs and writes a response of a decision's size and shape. It
// does no lookup, no rule and no ranking; nextbest's throughput is reported
// as a ratio of it.

var baselineOffer = []byte(`{"id":"spring-running-preview","name":"Spring running preview","score":25,"content":{"headline":"New season running shoes","body":"Be the first to try the spring collection.","image":"/img/campaigns/spring-running.jpg","cta_url":"/running/new"}}`)

func serveBaseline(ctx context.Context, addr string) error {
	var parsers fastjson.ParserPool
	var seq atomic.Uint64
	handler := func(c *fasthttp.RequestCtx) {
		p := parsers.Get()
		defer parsers.Put(p)
		switch string(c.Path()) {
		case "/readyz", "/healthz":
			c.SetBodyString(`{"status":"ok"}`)
			return
		case "/v1/decide":
			v, err := p.ParseBytes(c.PostBody())
			if err != nil {
				c.Error(`{"error":{"code":"invalid_request","message":"malformed JSON"}}`, fasthttp.StatusBadRequest)
				return
			}
			id := v.GetStringBytes("customer_id")
			ch := v.GetStringBytes("channel")
			limit := v.GetInt("limit")
			if len(id) == 0 || len(ch) == 0 {
				c.Error(`{"error":{"code":"invalid_request","message":"customer_id and channel are required"}}`, fasthttp.StatusBadRequest)
				return
			}
			b := c.Response.BodyWriter()
			buf := make([]byte, 0, 640)
			buf = append(buf, `{"decision_id":"`...)
			buf = strconv.AppendUint(buf, seq.Add(1), 36)
			buf = append(buf, `","customer_id":`...)
			buf = strconv.AppendQuote(buf, string(id))
			buf = append(buf, `,"channel":`...)
			buf = strconv.AppendQuote(buf, string(ch))
			buf = append(buf, `,"offers":[`...)
			for i := range max(min(limit, 3), 1) {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, baselineOffer...)
			}
			buf = append(buf, `],"degraded":false}`...)
			c.SetContentType("application/json")
			_, _ = b.Write(buf)
		case "/v1/events":
			v, err := p.ParseBytes(c.PostBody())
			if err != nil {
				c.Error(`{"error":{"code":"invalid_request","message":"malformed JSON"}}`, fasthttp.StatusBadRequest)
				return
			}
			n := 1
			if evs := v.GetArray("events"); evs != nil {
				n = len(evs)
			}
			c.SetStatusCode(fasthttp.StatusAccepted)
			c.SetContentType("application/json")
			fmt.Fprintf(c, `{"accepted":%d}`, n)
		default:
			c.Error(`{"error":{"code":"not_found"}}`, fasthttp.StatusNotFound)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "msg=listening addr=%s\n", ln.Addr())
	srv := &fasthttp.Server{Handler: handler, Name: "baseline", NoDefaultServerHeader: true}
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown()
	}()
	return srv.Serve(ln)
}
