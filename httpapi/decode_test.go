package httpapi

import (
	"bytes"
	"testing"

	"github.com/valyala/fastjson"
)

// TestDecodeDecide checks the fast path against the full parser on
// bodies it takes and bodies it leaves to the parser: when it takes one,
// the request is the parser's.
func TestDecodeDecide(t *testing.T) {
	s := newTestServer(t, newFakeStore(), nil)
	cat := s.svc.Catalog()
	tests := []struct {
		body string
		fast bool // the fast path takes it
	}{
		{`{"customer_id":"carter","channel":"web"}`, true},
		{` { "customer_id" : "carter" ,"channel":"app","placement":"home","limit":3 } ` + "\n", true},
		{`{"channel":"web","customer_id":"c-1","explain":true,"limit":10}`, true},
		{`{"customer_id":"c","channel":"web","placement":null,"context":null,"limit":null,"explain":null,"customer_token":null}`, true},
		{`{"customer_id":"c","channel":"web","explain":false,"customer_token":"tok.en"}`, true},
		{`{"customer_id":"c","channel":"web","placement":""}`, true},
		// Left to the parser: valid but not the common shape.
		{`{"customer_id":"c","channel":"web","context":{"page":"home"}}`, false},
		{`{"customer_id":"caf\u00e9","channel":"web"}`, false},
		{`{"customer_id":"café","channel":"web"}`, false},
		{`{"customer_id":"c","channel":"web","limit":3.0}`, false},
		{`{"customer_id":"c","channel":"web","limit":1e1}`, false},
		{`{"customer_\u0069d":"c","channel":"web"}`, false},
		// Invalid: the parser explains.
		{``, false},
		{`{}`, false},
		{`{"customer_id":"c"}`, false},
		{`{"customer_id":"","channel":"web"}`, false},
		{`{"customer_id":"c","channel":"fax"}`, false},
		{`{"customer_id":"c","channel":"web","limit":0}`, false},
		{`{"customer_id":"c","channel":"web","limit":-1}`, false},
		{`{"customer_id":"c","channel":"web","limit":01}`, false},
		{`{"customer_id":"c","channel":"web","limit":99999}`, false},
		{`{"customer_id":"c","channel":"web","limit":"3"}`, false},
		{`{"customer_id":"c","channel":"web","explain":1}`, false},
		{`{"customer_id":"c","channel":"web","explain":truex}`, false},
		{`{"customer_id":"c","channel":"web","color":"red"}`, false},
		{`{"customer_id":"c","customer_id":"d","channel":"web"}`, false},
		{`{"customer_id":"c","channel":"web",}`, false},
		{`{"customer_id":"c","channel":"web"}x`, false},
		{`{"customer_id":"c","channel":"web"`, false},
		{`{"customer_id":c,"channel":"web"}`, false},
		{`{"customer_id":"c","channel":"web","placement":7}`, false},
		{`{"customer_id":"a` + "\x01" + `","channel":"web"}`, false},
		{`[{"customer_id":"c","channel":"web"}]`, false},
	}
	for _, tt := range tests {
		var fast, full decideRequest
		got := decodeDecide([]byte(tt.body), cat, &fast)
		if got != tt.fast {
			t.Errorf("decodeDecide(%s) = %v, want %v", tt.body, got, tt.fast)
		}
		var p fastjson.Parser
		err := parseDecide(&p, []byte(tt.body), cat, &full)
		if got {
			if err != nil {
				t.Errorf("%s: the fast path took a body the parser rejects: %v", tt.body, err)
			} else if !sameDecideRequest(&fast, &full) {
				t.Errorf("%s: fast path %+v, parser %+v", tt.body, fast, full)
			}
		}
	}
}

// sameDecideRequest compares two parsed requests as the handler uses them.
func sameDecideRequest(a, b *decideRequest) bool {
	return bytes.Equal(a.customerID, b.customerID) && a.channel == b.channel && string(a.placement) == string(b.placement) &&
		a.context == nil && b.context == nil && a.limit == b.limit && a.explain == b.explain &&
		(a.customerToken == nil) == (b.customerToken == nil) && bytes.Equal(a.customerToken, b.customerToken)
}

// FuzzDecodeDecide checks the fast path never takes a body the full
// parser rejects, and reads what it takes as the parser does.
func FuzzDecodeDecide(f *testing.F) {
	for _, seed := range []string{
		`{"customer_id":"carter","channel":"web"}`,
		`{"customer_id":"c-1","channel":"app","placement":"home","limit":3,"explain":false}`,
		`{"customer_id":"c","channel":"web","customer_token":null,"context":null}`,
		`{"customer_id":"c","channel":"web","limit":10 }`,
	} {
		f.Add([]byte(seed))
	}
	s := newTestServer(f, newFakeStore(), nil)
	cat := s.svc.Catalog()
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast, full decideRequest
		if !decodeDecide(body, cat, &fast) {
			return
		}
		var p fastjson.Parser
		if err := parseDecide(&p, body, cat, &full); err != nil {
			t.Fatalf("%q: the fast path took a body the parser rejects: %v", body, err)
		}
		if !sameDecideRequest(&fast, &full) {
			t.Fatalf("%q: fast path %+v, parser %+v", body, fast, full)
		}
	})
}

// BenchmarkDecodeDecide compares the fast path with the full parser on a
// typical body.
func BenchmarkDecodeDecide(b *testing.B) {
	s := newTestServer(b, newFakeStore(), nil)
	cat := s.svc.Catalog()
	body := []byte(`{"customer_id":"c-48213","channel":"app","placement":"home","limit":3}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		var r decideRequest
		for b.Loop() {
			if !decodeDecide(body, cat, &r) {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("parser", func(b *testing.B) {
		b.ReportAllocs()
		var r decideRequest
		var p fastjson.Parser
		for b.Loop() {
			if err := parseDecide(&p, body, cat, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestFieldIndexes(t *testing.T) {
	for i, name := range map[int]string{fieldCustomerID: "customer_id", fieldChannel: "channel", fieldPlacement: "placement", fieldContext: "context",
		fieldLimit: "limit", fieldExplain: "explain", fieldCustomerToken: "customer_token"} {
		if decideFields[i] != name {
			t.Errorf("decideFields[%d] = %q, want %q", i, decideFields[i], name)
		}
	}
	if len(decideFields) > 8 {
		t.Errorf("%d decide fields: decodeDecide's seen set holds 8", len(decideFields))
	}
}
