package httpapi

import (
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

const templatesCatalog = "testdata/templates.yaml"

// templatesServer serves testdata/templates.yaml, or with templates off
// the same catalog with every template replaced by the name it renders
// for ada; its customers: ada, a name that is markup, a shopper without
// a name, a named customer with an empty cart.
func templatesServer(t testing.TB, store *fakeStore, cached, templates bool) *Server {
	t.Helper()
	var rs nextbest.RecordStore = store
	if cached {
		rs = &cachingStore{fakeStore: store}
	}
	cat := loadCatalog(t, templatesCatalog)
	if !templates {
		cat = untemplated(t, templatesCatalog)
	}
	s := newTestServer(t, rs, func(o *testOptions) { o.Catalog = cat })
	schema := s.svc.Catalog().Schema
	add := func(id, name string, events ...featurestore.Event) {
		r := &featurestore.Record{}
		if name != "" {
			r.SetAttr("first_name", featurestore.String(name))
		}
		for i := range events {
			r.Apply(schema, &events[i], testNow)
		}
		store.mu.Lock()
		store.recs[id] = r
		store.mu.Unlock()
	}
	cart := featurestore.Event{Type: "cart_add", Time: testNow.Add(-time.Hour)}
	add("ada", "Ada", cart)
	add("mallory", `<script>alert("x")</script>`, cart)
	add("anon-shopper", "", cart)
	add("browser", "Bea")
	return s
}

// untemplated loads the catalog at path with each template replaced by
// Ada: the same offers and content, without templates.
func untemplated(t testing.TB, path string) *atomic.Pointer[rules.Catalog] {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src = regexp.MustCompile(`\{\{[^}]*\}\}`).ReplaceAll(src, []byte("Ada"))
	c, err := rules.Load(path, src)
	if err != nil {
		t.Fatal(err)
	}
	var p atomic.Pointer[rules.Catalog]
	p.Store(c)
	return &p
}

// TestDecideTemplates checks the content a decision answers: rendered
// for its customer, the customer's values escaped as HTML on the web and
// verbatim on SMS, the fallback too, and a missing name taking the
// template's default.
func TestDecideTemplates(t *testing.T) {
	s := templatesServer(t, newFakeStore(), false, true)
	tests := []struct {
		customer, channel string
		limit             string
		want              string // the response from "offers"
	}{
		{"ada", "web", "1", `"offers":[{"id":"cart-reminder","name":"cart-reminder","score":30,"content":{"headline":"Hi Ada, your cart is waiting","cta_url":"/cart"}}],"degraded":false}`},
		{"ada", "sms", "3", `"offers":[{"id":"cart-reminder","name":"cart-reminder","score":30,"content":{"text":"Hi Ada, your cart is waiting"}},{"id":"new-arrivals","name":"new-arrivals","score":20,"content":{"text":"New arrivals, Ada"}},{"id":"loyalty","name":"loyalty","score":10,"content":{"text":"Ada, join the club"}}],"degraded":false}`},
		{"mallory", "web", "1", `"offers":[{"id":"cart-reminder","name":"cart-reminder","score":30,"content":{"headline":"Hi &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;, your cart is waiting","cta_url":"/cart"}}],"degraded":false}`},
		{"mallory", "sms", "1", `"offers":[{"id":"cart-reminder","name":"cart-reminder","score":30,"content":{"text":"Hi <script>alert(\"x\")</script>, your cart is waiting"}}],"degraded":false}`},
		{"anon-shopper", "web", "3", `"offers":[{"id":"cart-reminder","name":"cart-reminder","score":30,"content":{"headline":"Hi there, your cart is waiting","cta_url":"/cart"}},{"id":"new-arrivals","name":"new-arrivals","score":20,"content":{"headline":"New arrivals, there","cta_url":"/new"}},{"id":"loyalty","name":"loyalty","score":10,"content":{"headline":"You, join the club","cta_url":"/club"}}],"degraded":false}`},
		{"browser", "web", "1", `"offers":[],"fallback":{"headline":"Welcome, Bea"},"degraded":false}`},
		{"never-seen", "web", "1", `"offers":[],"fallback":{"headline":"Welcome, there"},"degraded":false}`},
		{"browser", "sms", "1", `"offers":[],"fallback":{"text":"New arrivals are in"},"degraded":false}`},
	}
	for _, tt := range tests {
		// Twice: the second decision reuses the first's pooled buffers.
		for range 2 {
			r := do(s, "POST", "/v1/decide", `{"customer_id":"`+tt.customer+`","channel":"`+tt.channel+`","limit":`+tt.limit+`}`)
			_, got, _ := strings.Cut(r.body, `"offers":`)
			if r.status != 200 || `"offers":`+strings.TrimSpace(got) != tt.want {
				t.Errorf("%s on %s: %d %s\nwant ...%s", tt.customer, tt.channel, r.status, r.body, tt.want)
			}
		}
	}
}

// TestShedTemplates: a decision shed for overload reads no customer, so
// its fallback is rendered for nobody: the templates' defaults.
func TestShedTemplates(t *testing.T) {
	one := Limit{InFlight: 1, Queue: 50 * time.Millisecond}
	s := newTestServer(t, newFakeStore(), func(o *testOptions) {
		o.Catalog = loadCatalog(t, templatesCatalog)
		o.Admission = Admission{Decide: one, Events: one, Other: one}
	})
	g := &s.admit.gates[classDecide]
	g.slots <- struct{}{} // a decision in flight
	defer func() { <-g.slots }()
	r := do(s, "POST", "/v1/decide", `{"customer_id":"ada","channel":"web"}`)
	if r.status != 200 || !strings.Contains(r.body, `"reason":"overload"`) || !strings.Contains(r.body, `"fallback":{"headline":"Welcome, there"}`) {
		t.Errorf("shed decide: %d %s, want the fallback for nobody, degraded for overload", r.status, r.body)
	}
}
