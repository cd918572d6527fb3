package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

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

// The echo baseline is what a naive Go JSON service costs: net/http, the
// request decoded into a struct and a decide-sized response encoded with
// encoding/json, no lookup and no rule. A decision's target is to cost no
// more server CPU than this echo.

type echoDecideRequest struct {
	CustomerID string         `json:"customer_id"`
	Channel    string         `json:"channel"`
	Placement  string         `json:"placement,omitempty"`
	Limit      int            `json:"limit"`
	Context    map[string]any `json:"context,omitempty"`
	Explain    bool           `json:"explain,omitempty"`
}

type echoContent struct {
	Headline string `json:"headline"`
	Body     string `json:"body"`
	Image    string `json:"image"`
	CTAURL   string `json:"cta_url"`
}

type echoOffer struct {
	ID      string      `json:"id"`
	Name    string      `json:"name"`
	Score   float64     `json:"score"`
	Content echoContent `json:"content"`
}

type echoDecision struct {
	DecisionID     string      `json:"decision_id"`
	CustomerID     string      `json:"customer_id"`
	Channel        string      `json:"channel"`
	CatalogVersion string      `json:"catalog_version"`
	Offers         []echoOffer `json:"offers"`
	Degraded       bool        `json:"degraded"`
}

type echoEvent struct {
	EventID    string         `json:"event_id,omitempty"`
	CustomerID string         `json:"customer_id"`
	Type       string         `json:"type"`
	Channel    string         `json:"channel,omitempty"`
	TS         string         `json:"ts,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

var echoOfferTemplate = echoOffer{ID: "spring-running-preview", Name: "Spring running preview", Score: 25, Content: echoContent{
	Headline: "New season running shoes", Body: "Be the first to try the spring collection.", Image: "/img/campaigns/spring-running.jpg", CTAURL: "/running/new"}}

func serveEcho(ctx context.Context, addr string) error {
	var seq atomic.Uint64
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) }
	mux.HandleFunc("GET /readyz", ok)
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("POST /v1/decide", func(w http.ResponseWriter, r *http.Request) {
		var req echoDecideRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.CustomerID == "" || req.Channel == "" {
			writeJSON(w, 400, map[string]any{"error": map[string]string{"code": "invalid_request", "message": "customer_id and channel are required"}})
			return
		}
		resp := echoDecision{DecisionID: strconv.FormatUint(seq.Add(1), 36), CustomerID: req.CustomerID, Channel: req.Channel, CatalogVersion: "bench"}
		for range max(min(req.Limit, 3), 1) {
			resp.Offers = append(resp.Offers, echoOfferTemplate)
		}
		writeJSON(w, 200, &resp)
	})
	mux.HandleFunc("POST /v1/events", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Events []echoEvent `json:"events"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, 400, map[string]any{"error": map[string]string{"code": "invalid_request", "message": "malformed JSON"}})
			return
		}
		writeJSON(w, 202, map[string]int{"accepted": max(len(req.Events), 1)})
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "msg=listening addr=%s\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
