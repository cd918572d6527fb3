package nextbest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/decisionlog"
	"github.com/nextbest/nextbest/rules"
)

// decideLogged makes n decisions of the example catalog for a few
// customers on every channel, logged, and returns the service's catalog
// and the log. Email decisions are impressions, so the history grows and
// caps come into play.
func decideLogged(t *testing.T, n int) (*rules.Catalog, *memLog) {
	t.Helper()
	log := &memLog{}
	var (
		cat    *rules.Catalog
		static string
	)
	svc, _ := newTestService(t, false, func(o *Options) {
		cat = o.Catalog.Load()
		// A customer of the static variant with carter's cart: offers
		// ranked without a draw.
		static = staticCustomer(t, cat)
		fs := o.Store.(*fakeStore)
		fs.recs[static] = fs.recs["carter"].Clone()
		o.DecisionLog, o.DecisionLogSample, o.PropensitySamples = log, 1, 16
		o.Stats = &fakeStats{learned: learnedRetail(cat)}
	})
	customers := []string{"carter", "", "new-1", "carter", "new-2", static}
	channels := []string{"web", "app", "email", "call_center"}
	contexts := []map[string]any{nil, {"page": "home"}, {"page": "cart", "cart_total": 350.0}}
	var d Decision
	for i := range n {
		d.Reset()
		req := Request{CustomerID: customers[i%len(customers)], Channel: channels[i%len(channels)], Limit: 1 + i%3,
			Context: contexts[i%len(contexts)]}
		if err := svc.Decide(context.Background(), &req, &d); err != nil {
			t.Fatal(err)
		}
	}
	if len(log.entries) != n {
		t.Fatalf("%d decisions logged, want %d", len(log.entries), n)
	}
	return cat, log
}

// staticCustomer returns a customer id in the ranking experiment's
// static variant (and not in the global holdout): its decisions make no
// draw, which replay must not take for a difference.
func staticCustomer(t *testing.T, cat *rules.Catalog) string {
	t.Helper()
	for i := range 10000 {
		id := fmt.Sprintf("static-%d", i)
		for _, a := range decision.Assign(nil, cat, id) {
			if a.Experiment.ID == "ranking" && a.Variant.Name == "static" {
				return id
			}
		}
	}
	t.Fatal("no customer in the ranking experiment's static variant")
	return ""
}

// TestReenactIdentical: every logged decision, read back from its JSON
// line, decides again to the logged answer, draw for draw, with and
// without explain; another seed draws otherwise.
func TestReenactIdentical(t *testing.T) {
	cat, log := decideLogged(t, 240)
	var contacts, learned, explored, static, reseeded int
	for _, e := range log.entries {
		if e.Explore == "static" && len(e.Offers) > 0 {
			static++
		}
		contacts += len(e.Contacts)
		learned += len(e.Learned)
		if e.Explore == "thompson" && len(e.Offers) > 0 {
			explored++
		}
		for _, explain := range []bool{false, true} {
			re, err := Reenact(cat, e, ReenactOptions{Explain: explain})
			if err != nil {
				t.Fatalf("%s: %v", e.ID, err)
			}
			if diffs := Compare(e, re); diffs != nil {
				t.Errorf("%s (explain %v): %v", e.ID, explain, diffs)
			}
			if len(re.Defaulted) > 0 || len(re.Unlearned) > 0 {
				t.Errorf("%s: defaulted %v, unlearned %v on the logged catalog", e.ID, re.Defaulted, re.Unlearned)
			}
		}
		re, err := Reenact(cat, e, ReenactOptions{Reseed: true, Seed: 42})
		if err != nil {
			t.Fatal(err)
		}
		if Compare(e, re) != nil {
			reseeded++
		}
	}
	// The test must exercise what replay needs the log for.
	if contacts == 0 || learned == 0 || explored == 0 || static == 0 || reseeded == 0 {
		t.Errorf("contacts %d, learned cells %d, exploring decisions %d, static decisions with offers %d, differing under another seed %d: want each > 0",
			contacts, learned, explored, static, reseeded)
	}
}

// TestReenactNeedsWhatIsLogged: without the logged contacts or learned
// counts, or with another feature value, some decisions differ: each
// part of the log is read.
func TestReenactNeedsWhatIsLogged(t *testing.T) {
	cat, log := decideLogged(t, 120)
	for _, tt := range []struct {
		name string
		edit func(e *decisionlog.Entry)
	}{
		{"no contacts", func(e *decisionlog.Entry) { e.Contacts = nil }},
		{"no learned", func(e *decisionlog.Entry) { e.Learned = nil }},
		{"an hour later", func(e *decisionlog.Entry) { e.Time = e.Time.AddDate(0, 0, 8) }},
	} {
		differ := 0
		for _, logged := range log.entries {
			e := *logged
			tt.edit(&e)
			re, err := Reenact(cat, &e, ReenactOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if Compare(logged, re) != nil {
				differ++
			}
		}
		if differ == 0 {
			t.Errorf("%s: every decision replays identically: replay does not read it", tt.name)
		}
	}
}

func TestReenactReports(t *testing.T) {
	cat, log := decideLogged(t, 12)
	e := *log.entries[0]
	e.Features = append(decisionlog.Fields(nil), e.Features...)
	e.Features[0].Value = []any{3.5} // no feature type takes a list of numbers
	e.Features = e.Features[:len(e.Features)-1]
	e.Learned = nil
	re, err := Reenact(cat, &e, ReenactOptions{})
	if err != nil {
		t.Fatal(err)
	}
	feats := cat.Schema.Features()
	if got := fmt.Sprint(re.Defaulted); len(re.Defaulted) != 2 || re.Defaulted[0].Name != feats[0].Name || re.Defaulted[1].Name != feats[len(feats)-1].Name {
		t.Errorf("defaulted %s, want %s and %s", got, feats[0].Name, feats[len(feats)-1].Name)
	}
	bad := *log.entries[0]
	bad.ID = "nope"
	if _, err := Reenact(cat, &bad, ReenactOptions{}); err == nil {
		t.Error("a bad id replays")
	}
	bad = *log.entries[0]
	bad.Contacts = []decisionlog.Contact{{Offer: "x", Channel: "web", Kind: "hug"}}
	if _, err := Reenact(cat, &bad, ReenactOptions{}); err == nil {
		t.Error("a contact of an unknown kind replays")
	}
}

// versionsOf keeps catalogs by version, as the registry does.
type versionsOf map[string]*rules.Catalog

func (v versionsOf) CompiledVersion(id string) (*rules.Catalog, error) {
	if c, ok := v[id]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w %s", ErrUnknownCatalogVersion, id)
}

func (v versionsOf) Compile(src []byte) (*rules.Catalog, error) {
	c, err := rules.Compile("upload", src, rules.Options{})
	if err == nil {
		c.Version = CatalogVersionOf(src)
	}
	return c, err
}

func TestServiceReplay(t *testing.T) {
	svc, _ := newTestService(t, true, nil)
	if _, err := svc.Replay("d5cvv4c7aibg00cl2a3g", nil); !errors.Is(err, ErrNoDecisionLog) {
		t.Errorf("without a log: %v", err)
	}
	log := &memLog{}
	var cat *rules.Catalog
	svc, _ = newTestService(t, true, func(o *Options) {
		o.DecisionLog, o.DecisionLogSample = log, 1
		cat = o.Catalog.Load()
	})
	var d Decision
	for range 2 {
		d.Reset()
		if err := svc.Decide(context.Background(), &Request{CustomerID: "carter", Channel: "web", Limit: 2}, &d); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.ReadFile("examples/retail/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	first, second := log.entries[0], log.entries[1]
	r, err := svc.Replay(first.ID, nil)
	if err != nil || !r.Identical() || r.Proposed != nil || len(r.Replayed.Result.Explain) == 0 {
		t.Fatalf("Replay: %+v, %v", r, err)
	}
	r, err = svc.Replay(first.ID, src)
	if err != nil || !r.Identical() || r.Proposed == nil || r.ProposedDifferences != nil {
		t.Errorf("Replay on the same catalog's source: %+v, %v", r, err)
	}
	var errs rules.Errors
	if _, err := svc.Replay(first.ID, []byte("offers: 3\n")); !errors.As(err, &errs) {
		t.Errorf("a bad proposed catalog: %v, want rules.Errors", err)
	}
	if _, err := svc.Replay("d5cvv4c7aibg00cl2a3g", nil); !errors.Is(err, decisionlog.ErrNotFound) {
		t.Errorf("an id not logged: %v", err)
	}
	if _, err := svc.Replay("nope", nil); !errors.Is(err, ErrBadDecisionID) {
		t.Errorf("a bad id: %v", err)
	}
	// A version other than the one in force: kept, or not.
	second.Catalog = "0123456789ab"
	if _, err := svc.Replay(second.ID, nil); !errors.Is(err, ErrUnknownCatalogVersion) {
		t.Errorf("a version not kept: %v, want ErrUnknownCatalogVersion", err)
	}
	r, err = svc.Replay(second.ID, src)
	if err != nil || r.Replayed != nil || r.Missing == "" || r.Proposed == nil || r.Identical() {
		t.Errorf("a version not kept, with a proposed catalog: %+v, %v", r, err)
	}
	old := *cat
	old.Version = second.Catalog
	svc.versions = versionsOf{second.Catalog: &old}
	if r, err := svc.Replay(second.ID, nil); err != nil || !r.Identical() {
		t.Errorf("a version kept: %+v, %v", r, err)
	}
}

// TestReenactOmittedContacts: a customer's contacts older than the
// catalog's longest look-back are left out of the logged entry, counted,
// and the decisions still replay identically; a proposed catalog that
// reads further back is told what the log does not hold.
func TestReenactOmittedContacts(t *testing.T) {
	log := &memLog{}
	var cat *rules.Catalog
	svc, store := newTestService(t, false, func(o *Options) {
		cat = o.Catalog.Load()
		o.DecisionLog, o.DecisionLogSample, o.PropensitySamples = log, 1, 16
		o.Stats = &fakeStats{learned: learnedRetail(cat)}
	})
	lookback := cat.ContactLookback()
	if lookback != 7*24*time.Hour {
		t.Fatalf("the example catalog's look-back is %s, want 7d (its caps and contact limits)", lookback)
	}
	// 30 days of contacts, one every 6 hours, the last week's enough to
	// cap and suppress some offers.
	offers := []string{"home-hero-new-arrivals", "running-shoes-launch", "outdoor-gear-bundle", "summer-clearance"}
	channels := []string{"web", "app", "email"}
	kinds := []featurestore.Outcome{featurestore.Impression, featurestore.Impression, featurestore.Click, featurestore.Impression, featurestore.Dismiss}
	const n = 120
	for i := range n {
		store.recs["carter"].AddContact(featurestore.Contact{OfferID: offers[i%len(offers)], Channel: channels[i%len(channels)],
			Kind: kinds[i%len(kinds)], At: testNow.Add(-time.Duration(n-i) * 6 * time.Hour).UnixNano()}, 0, testNow)
	}
	var d Decision
	for i := range 24 {
		d.Reset()
		req := Request{CustomerID: "carter", Channel: []string{"web", "app", "email", "call_center"}[i%4], Limit: 1 + i%3}
		if err := svc.Decide(context.Background(), &req, &d); err != nil {
			t.Fatal(err)
		}
	}
	longer := proposedCatalog(t, "contact_policy: {max_offers: 8, within: 1d}", "contact_policy: {max_offers: 8, within: 40d}")
	var capped int
	for _, e := range log.entries {
		cut := e.Time.Add(-lookback).UnixNano()
		if e.ContactsOmitted == 0 || e.ContactsOmittedAt >= cut {
			t.Fatalf("%s: %d contacts omitted, the last at %d: want some, before the look-back %d", e.ID, e.ContactsOmitted, e.ContactsOmittedAt, cut)
		}
		for _, c := range e.Contacts {
			if c.At < cut {
				t.Fatalf("%s: a contact at %d logged, before the look-back %d", e.ID, c.At, cut)
			}
		}
		if got := len(e.Contacts) + e.ContactsOmitted; got < n {
			t.Errorf("%s: %d contacts logged and %d omitted, want at least the %d of the history", e.ID, len(e.Contacts), e.ContactsOmitted, n)
		}
		re, err := Reenact(cat, e, ReenactOptions{Explain: true})
		if err != nil {
			t.Fatal(err)
		}
		if diffs := Compare(e, re); diffs != nil {
			t.Errorf("%s: %v", e.ID, diffs)
		}
		if re.OmittedContacts != 0 {
			t.Errorf("%s: %d omitted contacts reported on the logging catalog", e.ID, re.OmittedContacts)
		}
		for _, x := range re.Result.Explain {
			if x.Reason == decision.Capped || x.Reason == decision.Suppressed || x.Reason == decision.GroupCapped || x.Reason == decision.PolicyReached {
				capped++
				break
			}
		}
		re, err = Reenact(longer, e, ReenactOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if re.OmittedContacts != e.ContactsOmitted {
			t.Errorf("%s: a catalog reading 40 days back reports %d omitted contacts, want %d", e.ID, re.OmittedContacts, e.ContactsOmitted)
		}
	}
	// The logged contacts must matter: some decisions are held by them.
	if capped == 0 {
		t.Error("no logged decision has an offer capped or suppressed: the test does not exercise the logged contacts")
	}
}

// proposedCatalog is the example catalog with old replaced by new.
func proposedCatalog(t *testing.T, old, new string) *rules.Catalog {
	t.Helper()
	src, err := os.ReadFile("examples/retail/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte(old)) {
		t.Fatalf("the example catalog has no %q", old)
	}
	c, err := rules.Compile("proposed", bytes.Replace(src, []byte(old), []byte(new), 1), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
