package nextbest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
)

// TestDecideRendersTemplates checks that the service renders the
// templates of the retail catalog's content for the customer, escaped
// as each channel says, into the Decision it fills, and that a Decision
// reused for another customer or channel answers that one's content.
func TestDecideRendersTemplates(t *testing.T) {
	s, store := newTestService(t, false, nil)
	store.recs["carter"].SetAttr("first_name", featurestore.String("<b>Carter</b>"))
	tests := []struct {
		req   Request
		offer string // "" for the fallback
		field string
		want  string
	}{
		{Request{CustomerID: "carter", Channel: "web", Limit: 10}, "cart-reminder", "body", "Hi &lt;b&gt;Carter&lt;/b&gt;, still thinking about it? The items you picked are still available."},
		{Request{CustomerID: "carter", Channel: "sms", Limit: 2}, "sms-cart-low-stock", "text", "Hi <b>Carter</b>, an item in your cart is almost sold out. Check out at shop.example/cart Reply STOP to opt out."},
		{Request{CustomerID: "", Channel: "call_center", Limit: 1}, "", "script", "Thank the customer for calling and ask how you can help."},
		{Request{CustomerID: "carter", Channel: "web", Limit: 10}, "cart-reminder", "body", "Hi &lt;b&gt;Carter&lt;/b&gt;, still thinking about it? The items you picked are still available."},
	}
	var d Decision
	for i, tt := range tests {
		tt.req.Now = testNow
		if err := s.Decide(context.Background(), &tt.req, &d); err != nil {
			t.Fatal(err)
		}
		content := d.Result.Fallback
		for _, c := range d.Result.Offers {
			if c.Offer.ID == tt.offer {
				content = c.Content
			}
		}
		if content == nil {
			t.Fatalf("%d: %s on %s: offers %v, want %q", i, tt.req.CustomerID, tt.req.Channel, offerIDs(&d), tt.offer)
		}
		var got map[string]any
		if err := json.Unmarshal(content.JSON, &got); err != nil {
			t.Fatalf("%d: %s: %v", i, content.JSON, err)
		}
		if got[tt.field] != tt.want {
			t.Errorf("%d: %s on %s: %s = %q, want %q", i, tt.req.CustomerID, tt.req.Channel, tt.field, got[tt.field], tt.want)
		}
		if i%2 == 1 {
			d.Reset()
		}
	}
}
