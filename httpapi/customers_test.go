package httpapi

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nextbest/nextbest/featurestore"
)

func TestCustomerUnknown(t *testing.T) {
	s := newTestServer(t, newFakeStore(), nil)
	r := do(s, "GET", "/v1/customers/nobody", "")
	want := `{"customer_id":"nobody","known":false,"features":{"lifetime_value":0,"tier":"none","interests":[],"opted_out_sms":false,"birthday":null,"last_purchase_at":null,"purchases_30d":0,"spend_90d":0,"cart_items":0,"last_category":""}}` + "\n"
	if r.status != 200 || r.body != want {
		t.Errorf("got %d %s\nwant 200 %s", r.status, r.body, want)
	}
}

func TestCustomerUpsert(t *testing.T) {
	store := newFakeStore()
	s := newTestServer(t, store, nil)
	if r := do(s, "POST", "/v1/events", `{"customer_id":"c/1","type":"purchase","ts":"2026-11-20T08:00:00.5Z","properties":{"amount":99}}`); r.status != 202 {
		t.Fatalf("event: got %d %s", r.status, r.body)
	}
	r := do(s, "PUT", "/v1/customers/c%2F1", `{"features":{"tier":"gold","lifetime_value":1500,"interests":["shoes","\"hats\""],"opted_out_sms":true,"birthday":"1990-05-01T00:00:00Z"}}`)
	want := `{"customer_id":"c/1","known":true,"features":{"lifetime_value":1500,"tier":"gold","interests":["shoes","\"hats\""],"opted_out_sms":true,"birthday":"1990-05-01T00:00:00Z","last_purchase_at":"2026-11-20T08:00:00.5Z","purchases_30d":1,"spend_90d":99,"cart_items":0,"last_category":""}}` + "\n"
	if r.status != 200 || r.body != want {
		t.Fatalf("PUT: got %d %s\nwant 200 %s", r.status, r.body, want)
	}
	if got := do(s, "GET", "/v1/customers/c%2F1", ""); got.body != want {
		t.Errorf("GET after PUT:\ngot  %s\nwant %s", got.body, want)
	}
	// A partial update keeps the other attributes; null resets one to its default.
	r = do(s, "PUT", "/v1/customers/c%2F1", `{"features":{"tier":null}}`)
	var body struct {
		Known    bool
		Features map[string]any
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"tier": "none", "lifetime_value": 1500.0}, map[string]any{"tier": body.Features["tier"], "lifetime_value": body.Features["lifetime_value"]}); diff != "" {
		t.Errorf("after reset (-want +got):\n%s", diff)
	}
	// The update changes the next decision: tier gold makes a VIP.
	store.recs["vip-to-be"] = &featurestore.Record{}
	d := decode(t, do(s, "POST", "/v1/decide", `{"customer_id":"vip-to-be","channel":"call_center","explain":true}`))
	if len(d.Segments) != 0 {
		t.Fatalf("segments before: got %v, want none", d.Segments)
	}
	do(s, "PUT", "/v1/customers/vip-to-be", `{"features":{"tier":"gold"}}`)
	d = decode(t, do(s, "POST", "/v1/decide", `{"customer_id":"vip-to-be","channel":"call_center","explain":true}`))
	if diff := cmp.Diff([]string{"vip"}, d.Segments); diff != "" {
		t.Errorf("segments after (-want +got):\n%s", diff)
	}
}

// TestCustomerNumbersExact: a number is stored as the float64 nearest to
// what the client sent, whatever its notation (fastjson's own float
// parser is not correctly rounded for some of these).
func TestCustomerNumbersExact(t *testing.T) {
	s := newTestServer(t, newFakeStore(), nil)
	for _, n := range []string{"1.1e-299", "2.0250405e+07", "0.1", "123456789012345678", "4.9406564584124654e-324", "1.7976931348623157e308", "-0.000099369485"} {
		t.Run(n, func(t *testing.T) {
			want, err := strconv.ParseFloat(n, 64)
			if err != nil {
				t.Fatal(err)
			}
			r := do(s, "PUT", "/v1/customers/c", `{"features":{"lifetime_value":`+n+`}}`)
			var body struct{ Features map[string]any }
			if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.status != 200 {
				t.Fatalf("PUT: %d %s (%v)", r.status, r.body, err)
			}
			if got := body.Features["lifetime_value"]; got != want {
				t.Errorf("lifetime_value %s: got %v, want %v", n, got, want)
			}
		})
	}
}

func TestCustomerInvalid(t *testing.T) {
	store := newFakeStore()
	s := newTestServer(t, store, nil)
	tests := []struct {
		name, uri, body, want string
	}{
		{"malformed", "/v1/customers/c", `{"features":`, "malformed JSON"},
		{"no features", "/v1/customers/c", `{}`, "features: is required"},
		{"features not an object", "/v1/customers/c", `{"features":[]}`, "features: must be an object, got an array"},
		{"unknown top-level field", "/v1/customers/c", `{"features":{},"tier":"gold"}`, "tier: unknown field; allowed: features"},
		{"unknown feature", "/v1/customers/c", `{"features":{"shoe_size":42}}`, "features.shoe_size: unknown feature"},
		{"derived feature", "/v1/customers/c", `{"features":{"cart_items":3}}`, `features.cart_items: is derived from "cart_add" events`},
		{"wrong type", "/v1/customers/c", `{"features":{"lifetime_value":"1500"}}`, "features.lifetime_value: got a string, want number"},
		{"wrong bool", "/v1/customers/c", `{"features":{"opted_out_sms":"yes"}}`, "features.opted_out_sms: got a string, want bool"},
		{"wrong list", "/v1/customers/c", `{"features":{"interests":["a",1]}}`, "features.interests: list element 1 is a number, want string"},
		{"wrong time", "/v1/customers/c", `{"features":{"birthday":"May 1st"}}`, `features.birthday: "May 1st" is not an RFC 3339 time`},
		{"overflow", "/v1/customers/c", `{"features":{"lifetime_value":1e999}}`, "features.lifetime_value: number 1e999 is out of range"},
		{"bad escape in id", "/v1/customers/c%zz", `{"features":{}}`, "customer id: invalid URL escape"},
		{"invalid UTF-8 id", "/v1/customers/c%ff", `{"features":{}}`, "customer id: not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(s, "PUT", tt.uri, tt.body)
			if r.status != 400 {
				t.Fatalf("status: got %d, want 400 (body %s)", r.status, r.body)
			}
			if code, msg := errorBody(t, r); code != CodeInvalidRequest || !strings.Contains(msg, tt.want) {
				t.Errorf("error: got %q %q, want invalid_request containing %q", code, msg, tt.want)
			}
		})
	}
	if store.mutates != 0 {
		t.Errorf("invalid updates reached the store %d times", store.mutates)
	}
}

func TestCustomerStoreDown(t *testing.T) {
	store := newFakeStore()
	store.err = errors.New("disk full")
	s := newTestServer(t, store, nil)
	for _, method := range []string{"GET", "PUT"} {
		r := do(s, method, "/v1/customers/c", `{"features":{"tier":"gold"}}`)
		if r.status != 503 {
			t.Errorf("%s: got %d %s, want 503", method, r.status, r.body)
		}
		if got := string(r.header.Peek("Retry-After")); got != "1" {
			t.Errorf("%s: Retry-After: got %q, want 1", method, got)
		}
	}
}
