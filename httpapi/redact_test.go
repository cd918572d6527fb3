package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
)

// TestRequestErrorClass: what fasthttp could not read is logged as a
// class; the errors themselves quote the request, the key included.
func TestRequestErrorClass(t *testing.T) {
	const key = "nbk_secretKEYinAheader"
	var req fasthttp.Request
	malformed := req.Read(bufio.NewReader(strings.NewReader("POST /v1/decide HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key + "\r\nnot a header\r\n\r\n")))
	if malformed == nil || !strings.Contains(malformed.Error(), key) {
		t.Fatalf("fasthttp's error %v does not quote the request: this test no longer shows why only the class is logged", malformed)
	}
	tests := []struct {
		err  error
		want string
	}{
		{malformed, "malformed"},
		{fasthttp.ErrBodyTooLarge, "body_too_large"},
		{fmt.Errorf("reading: %w", fasthttp.ErrBodyTooLarge), "body_too_large"},
		{&fasthttp.ErrSmallBuffer{}, "headers_too_large"},
		{timeoutErr{}, "timeout"},
		{os.ErrDeadlineExceeded, "timeout"},
		{io.EOF, "connection"},
		{io.ErrUnexpectedEOF, "connection"},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, "connection"},
		{&net.OpError{Op: "write", Err: syscall.EPIPE}, "connection"},
		{errors.New("cannot parse request line"), "malformed"},
		{nil, "malformed"},
	}
	for _, tt := range tests {
		if got := RequestErrorClass(tt.err); got != tt.want {
			t.Errorf("RequestErrorClass(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// panicStore panics with a value that quotes customer data.
type panicStore struct{ nextbest.RecordStore }

func (panicStore) Load(context.Context, string) (*featurestore.Record, error) {
	panic(fmt.Errorf("customer tier %q", "attr-Sapphire"))
}

// TestPanicLogRedacted: a recovered panic is logged with its route, its
// type and its stack, not the path (a customer id) or the value.
func TestPanicLogRedacted(t *testing.T) {
	tests := []struct {
		name, method, uri, body string
		want                    string // in the log line
	}{
		{"profile", "GET", "/v1/customers/cust-Opal-77", "", "route=customers"},
		{"decide", "POST", "/v1/decide", `{"customer_id":"cust-Opal-77","channel":"web"}`, "route=decide"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := newTestServer(t, panicStore{newFakeStore()}, func(o *testOptions) {
				o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			if r := do(s, tt.method, tt.uri, tt.body); r.status != 500 {
				t.Fatalf("status %d, want 500", r.status)
			}
			got := logs.String()
			if !strings.Contains(got, `msg="panic serving request"`) || !strings.Contains(got, tt.want) || !strings.Contains(got, "panic=*errors.errorString") {
				t.Errorf("log %q, want the panic with %s and its type", got, tt.want)
			}
			for _, secret := range []string{"attr-Sapphire", "cust-Opal-77"} {
				if strings.Contains(got, secret) {
					t.Errorf("the log holds %q: %s", secret, got)
				}
			}
		})
	}
}

func TestPanicSummary(t *testing.T) {
	var m map[string]int
	runtimeErr := func() (p any) {
		defer func() { p = recover() }()
		m["x"] = 1
		return nil
	}()
	tests := []struct {
		p    any
		want string
	}{
		{runtimeErr, "assignment to entry in nil map"},
		{"customer attr-Sapphire", "string"},
		{errors.New("attr-Sapphire"), "*errors.errorString"},
	}
	for _, tt := range tests {
		if got := panicSummary(tt.p); got != tt.want {
			t.Errorf("panicSummary(%v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}
