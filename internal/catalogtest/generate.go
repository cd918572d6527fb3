package catalogtest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Options configures Generate.
type Options struct {
	// Offers is the number of offers. Default 100.
	Offers int
	// Segments is the number of segments. Default 20.
	Segments int
	// Seed selects the catalog; every seed, including 0, is valid.
	// Default 0.
	Seed uint64
}

// Channels are the channels of a generated catalog, in declaration order.
var Channels = []string{"web", "app", "call_center", "email", "sms"}

// Placements are the placements generated offers may be restricted to.
var Placements = []string{"home_hero", "cart_page", "checkout"}

// features is the schema every generated catalog declares: the same as
// the example retail catalog's, so one Population serves both.
const features = `features:
  lifetime_value:    {type: number, default: 0}
  tier:              {type: string, default: "none"}
  interests:         {type: list}
  loyalty_points:    {type: number, default: 0}
  opted_out_sms:     {type: bool, default: false}
  opted_out_email:   {type: bool, default: false}
  region:            {type: string, default: "unknown"}
  app_installed:     {type: bool, default: false}
  signup_at:         {type: time}
  last_purchase_at:  {type: time, from: {event: purchase, op: last_time}}
  purchases_30d:     {type: number, from: {event: purchase, op: count, window: 30d}}
  spend_90d:         {type: number, from: {event: purchase, op: sum, field: amount, window: 90d}}
  cart_items:        {type: number, from: {event: cart_add, op: count, reset_on: [purchase]}}
  last_category:     {type: string, default: "", from: {event: product_view, op: last, field: category}}
  page_views_7d:     {type: number, from: {event: page_view, op: count, window: 7d}}
  support_calls_30d: {type: number, from: {event: call, op: count, window: 30d}}
  last_call_reason:  {type: string, default: "", from: {event: call, op: last, field: reason, window: 30d}}
  last_app_open_at:  {type: time, from: {event: app_open, op: last_time}}
`

// atoms are the predicates rules are built from, in the shapes marketers
// write: numeric and time comparisons, string equality, list membership
// and flags. Each is a format with one %s taking a threshold or a value
// from its choices, chosen so that each holds for a fair share of a
// Population. A rule uses at most one atom of a group, so that it never
// contradicts itself (bought 3 times this month, yet lapsed).
var atoms = []struct {
	group   string
	format  string
	choices []string
}{
	{"ltv", "customer.lifetime_value >= %s", []string{"100", "250", "500", "1000", "2000"}},
	{"ltv", "customer.lifetime_value < %s", []string{"50", "200", "800"}},
	{"purchase", "customer.spend_90d > %s", []string{"0", "50", "100", "200", "400"}},
	{"purchase", "customer.purchases_30d >= %s", []string{"1", "2", "3"}},
	{"purchase", "days_since(customer.last_purchase_at) < %s", []string{"7", "14", "30", "60"}},
	{"purchase", "days_since(customer.last_purchase_at) > %s", []string{"30", "60", "90", "180"}},
	{"cart", "customer.cart_items > %s", []string{"0", "1"}},
	{"views", "customer.page_views_7d >= %s", []string{"2", "5", "10"}},
	{"points", "customer.loyalty_points >= %s", []string{"100", "500", "1000"}},
	{"calls", "customer.support_calls_30d >= %s", []string{"1", "2"}},
	{"calls", "customer.last_call_reason == %s", []string{`"delivery"`, `"return"`, `"billing"`}},
	{"signup", "days_since(customer.signup_at) <= %s", []string{"30", "90", "365"}},
	{"app", "hours_since(customer.last_app_open_at) < %s", []string{"24", "72", "168"}},
	{"app", "%scustomer.app_installed", []string{"", "!"}},
	{"tier", "customer.tier == %s", []string{`"silver"`, `"gold"`, `"platinum"`}},
	{"tier", "customer.tier != %s", []string{`"none"`}},
	{"tier", "customer.tier in %s", []string{`["gold", "platinum"]`, `["silver", "gold"]`}},
	{"region", "customer.region == %s", []string{`"north"`, `"south"`, `"east"`, `"west"`}},
	{"category", "customer.last_category == %s", []string{`"running"`, `"outdoor"`, `"electronics"`, `"kids"`}},
	{"interests", "%s in customer.interests", []string{`"running"`, `"outdoor"`, `"kids"`, `"electronics"`, `"home"`, `"fashion"`}},
}

// gen writes one catalog.
type gen struct {
	rng      *rand.Rand
	buf      bytes.Buffer
	segments []string        // declared so far
	used     map[string]bool // atom groups used by the rule being built
}

// Generate returns a catalog of opts.Offers offers and opts.Segments
// segments over the five Channels. Segments are defined by rules over the
// features and, after the first few, by membership of earlier segments;
// offers list one to three channels with each channel's form of content,
// a few are restricted to Placements or scheduled (some schedules over,
// some not yet begun), and offers sent by email or SMS honour the opt-outs.
func Generate(opts Options) []byte {
	if opts.Offers <= 0 {
		opts.Offers = 100
	}
	if opts.Segments <= 0 {
		opts.Segments = 20
	}
	g := &gen{rng: rand.New(rand.NewPCG(opts.Seed, 0x6e657874626573)), used: map[string]bool{}}
	fmt.Fprintf(&g.buf, "# Generated by internal/catalogtest: %d offers, %d segments, seed %d.\n", opts.Offers, opts.Segments, opts.Seed)
	g.buf.WriteString("channels: [web, app, call_center, {name: email, decision_is_impression: true}, {name: sms, decision_is_impression: true}]\n")
	g.buf.WriteString(features)
	g.buf.WriteString("segments:\n")
	for i := range opts.Segments {
		g.segment(i)
	}
	g.buf.WriteString("offers:\n")
	for i := range opts.Offers {
		g.offer(i)
	}
	g.buf.WriteString(defaults)
	return g.buf.Bytes()
}

func (g *gen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

// atom returns a predicate of a group the rule has not used yet. A rule
// has at most 4 conjuncts of at most 2 atoms, fewer than the groups, so
// the loop ends.
func (g *gen) atom() string {
	for {
		a := atoms[g.rng.IntN(len(atoms))]
		if !g.used[a.group] {
			g.used[a.group] = true
			return fmt.Sprintf(a.format, g.pick(a.choices))
		}
	}
}

// conjunct is one operand of a rule's top-level &&: an atom, an atom or
// another, or a segment membership test.
func (g *gen) conjunct(segmentShare int) string {
	switch r := g.rng.IntN(100); {
	case r < segmentShare && len(g.segments) > 0:
		s := strconv.Quote(g.pick(g.segments)) + " in segments"
		if g.rng.IntN(4) == 0 {
			return "!(" + s + ")"
		}
		return s
	case r < segmentShare+25:
		return "(" + g.atom() + " || " + g.atom() + ")"
	default:
		return g.atom()
	}
}

func (g *gen) rule(n, segmentShare int) string {
	clear(g.used)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = g.conjunct(segmentShare)
	}
	return join(parts)
}

// join joins conjuncts with &&; a lone a || b needs no parentheses.
func join(parts []string) string {
	if len(parts) == 1 && strings.HasPrefix(parts[0], "(") && strings.HasSuffix(parts[0], ")") {
		return parts[0][1 : len(parts[0])-1]
	}
	return strings.Join(parts, " && ")
}

// segment writes segment i: a condition on features and, in half of the
// later segments, membership of an earlier one.
func (g *gen) segment(i int) {
	name := fmt.Sprintf("segment_%02d", i)
	clear(g.used)
	parts := []string{g.conjunct(0)}
	if i >= 3 && g.rng.IntN(2) == 0 {
		parts = append(parts, g.conjunct(60))
	}
	fmt.Fprintf(&g.buf, "  %s: %s\n", name, quote(join(parts)))
	g.segments = append(g.segments, name)
}

// schedules are the schedules a few offers carry: running (half of
// them), over, not yet begun. They are far from today so that a catalog generated once keeps
// its shape for years.
var schedules = [][2]string{
	{"2024-01-01T00:00:00Z", "2099-01-01T00:00:00Z"},
	{"2025-06-01T00:00:00Z", "2098-06-01T00:00:00Z"},
	{"2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"},
	{"2098-01-01T00:00:00Z", "2099-01-01T00:00:00Z"},
}

func (g *gen) offer(i int) {
	w := &g.buf
	id := fmt.Sprintf("offer-%03d", i)
	fmt.Fprintf(w, "  - id: %s\n    name: %s\n", id, strconv.Quote(fmt.Sprintf("Generated offer %d", i)))

	picked := g.rng.Perm(len(Channels))[:1+g.rng.IntN(3)]
	slices.Sort(picked) // list them in declaration order, as an author would
	channels := make([]string, len(picked))
	for j, k := range picked {
		channels[j] = Channels[k]
	}
	fmt.Fprintf(w, "    channels: [%s]\n", strings.Join(channels, ", "))

	if g.rng.IntN(10) == 0 {
		fmt.Fprintf(w, "    placements: [%s]\n", g.pick(Placements))
	}
	rule := g.rule(2+g.rng.IntN(3), 30)
	for _, ch := range channels {
		if ch == "email" || ch == "sms" {
			rule += fmt.Sprintf(` && (channel != "%s" || !customer.opted_out_%s)`, ch, ch)
		}
	}
	fmt.Fprintf(w, "    eligible: %s\n", quote(rule))
	fmt.Fprintf(w, "    value: %d\n", 1+g.rng.IntN(60))
	if g.rng.IntN(4) == 0 {
		fmt.Fprintf(w, "    weight: %s\n", []string{"0.5", "1.5", "2"}[g.rng.IntN(3)])
	}
	if g.rng.IntN(10) == 0 {
		s := schedules[g.rng.IntN(len(schedules))]
		fmt.Fprintf(w, "    start: %s\n    end: %s\n", s[0], s[1])
	}
	w.WriteString("    content:\n")
	for _, ch := range channels {
		fmt.Fprintf(w, "      %s: %s\n", ch, content(ch, i))
	}
}

// content is offer i's creative in channel ch's form.
func content(ch string, i int) string {
	switch ch {
	case "web":
		return fmt.Sprintf(`{headline: "Offer %d", body: "Generated offer %d for the web", image: "/img/offers/%d.jpg", cta_url: "/offers/%d"}`, i, i, i, i)
	case "app":
		return fmt.Sprintf(`{title: "Offer %d", body: "Generated offer %d for the app", deeplink: "shop://offers/%d"}`, i, i, i)
	case "call_center":
		return fmt.Sprintf(`{script: "Present offer %d to the customer.", talking_points: ["Point one of offer %d", "Point two"]}`, i, i)
	case "email":
		return fmt.Sprintf(`{subject: "Offer %d for you", preheader: "Generated offer %d", template: offer-%d}`, i, i, i)
	default:
		return fmt.Sprintf(`{text: "Offer %d: see shop.example/o/%d Reply STOP to opt out."}`, i, i)
	}
}

const defaults = `defaults:
  web: {headline: "Welcome back", body: "Discover what's new.", image: "/img/default.jpg", cta_url: "/"}
  app: {title: "Welcome back", body: "Discover what's new.", deeplink: "shop://home"}
  call_center: {script: "Ask how you can help.", talking_points: ["Confirm contact details"]}
  email: {subject: "What's new this week", preheader: "Fresh arrivals", template: newsletter}
  sms: {text: "New arrivals at shop.example. Reply STOP to opt out."}
`

// quote makes s a single-quoted YAML scalar, which needs no escapes but
// doubled single quotes.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Slow returns a catalog on the web channel of offers offers and segments
// segments whose every rule is legal on its own and slow: any(1..5000,
// # < 0) turns 5,000 times on expr's VM, a third of a millisecond. 1,500
// of them made every decision take half a second before catalogs had a
// budget (issue 10); the budget's tests and benchmarks refuse them. A
// catalog of segments alone gets one offer without a rule.
func Slow(offers, segments int) []byte {
	var b bytes.Buffer
	b.WriteString("channels: [web]\nfeatures:\n  lifetime_value: {type: number, default: 0}\n")
	if segments > 0 {
		b.WriteString("segments:\n")
		for i := range segments {
			fmt.Fprintf(&b, "  s%d: 'any(1..5000, # < 0)'\n", i)
		}
	}
	b.WriteString("offers:\n")
	for i := range offers {
		fmt.Fprintf(&b, "  - id: o-%d\n    channels: [web]\n    eligible: 'any(1..5000, # < 0)'\n    content: {web: {headline: \"x\"}}\n", i)
	}
	if offers == 0 {
		b.WriteString("  - id: a\n    channels: [web]\n    content: {web: {headline: \"x\"}}\n")
	}
	return b.Bytes()
}
