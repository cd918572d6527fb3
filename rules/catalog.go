package rules

import (
	"encoding/json"
	"time"

	"github.com/nextbest/nextbest/featurestore"
)

// Catalog is a compiled catalog: immutable and safe for concurrent use.
type Catalog struct {
	File string
	// Version names the catalog among those a server has run: a short
	// hash of its source, set by the registry (internal/catalogs) before
	// the catalog is published and never after; "" for a catalog loaded
	// without one. Every decision reports it.
	Version  string
	Channels []*Channel
	Schema   *featurestore.Schema
	Segments []*Segment // in declaration order, which is evaluation order
	Offers   []*Offer   // in declaration order
	// Policy is the catalog-wide contact policy; a zero MaxOffers means none.
	Policy ContactPolicy
	// Groups are the offer groups declared under groups: with their caps.
	// Offers may name a group that is not declared: it has no caps.
	Groups map[string]*Group
	// Learning configures propensity learning; Arbitration how offers
	// are ranked (the zero value: propensity × value × weight).
	Learning    Learning
	Arbitration Arbitration
	Experiments []*Experiment
	// Sticky is how long an offer presented on one channel is ranked
	// first on the others; 0 for no stickiness. An offer may set its own.
	Sticky time.Duration

	channels  map[string]*Channel
	offers    map[string]*Offer
	byChannel [][]*Offer // offers listed for each channel, by Channel.Index
	defaults  []*Content // fallback content by Channel.Index; nil if none
	maxSticky time.Duration
	lookback  time.Duration // ContactLookback
	cost      int           // summed cost of the expressions (budget.go)
	// The distinct conditions of the offers' eligible rules and each
	// channel's offers indexed by them, by Channel.Index (conditions.go).
	conds   *conditions
	screens []screen
}

// MaxSticky is the longest stickiness window of any offer.
func (c *Catalog) MaxSticky() time.Duration { return c.maxSticky }

// ContactLookback is how far back the catalog's rules read a customer's
// contact history: the longest window of its contact policy, channel
// contact limits, caps, suppressions and stickiness (0 when it has
// none). A decision at t reads no contact older than t minus it.
func (c *Catalog) ContactLookback() time.Duration { return c.lookback }

// Channel is a spoke of the wheel: web, app, call_center, email, sms, ...
type Channel struct {
	Name  string
	Index int
	// DecisionIsImpression marks channels where deciding is delivering
	// (email, sms): the decision itself counts as the impression.
	DecisionIsImpression bool
	// Eligible is the channel's consent rule: a customer for whom it is
	// false gets no offers and no fallback on the channel. nil: everyone.
	Eligible *Rule
	// ContactLimit caps the impressions on the channel across all offers
	// (its Channel is the channel itself); a zero Max means none.
	// LimitRule names it for explanations.
	ContactLimit Cap
	LimitRule    string
	// Quiet is the channel's quiet hours; nil for none.
	Quiet *QuietHours
	// Escape is how the customer's values that content templates put
	// into the channel's content are escaped (template.go): content_escape,
	// else HTML for web and email and none for every other channel.
	Escape Escape
}

// Gated reports whether ch has a policy (consent, contact limit or quiet
// hours) that may withhold its whole answer, fallback included.
func (ch *Channel) Gated() bool {
	return ch.Eligible != nil || ch.ContactLimit.Max > 0 || ch.Quiet != nil
}

// Segment is a named group of customers defined by a rule.
type Segment struct {
	Name        string
	Description string
	Index       int
	Rule        *Rule
}

// Offer is something a channel can present to a customer.
type Offer struct {
	ID          string
	Name        string
	Description string
	Index       int
	Channels    []*Channel
	Placements  []string // empty: any placement
	Eligible    *Rule    // nil: always eligible
	Value       float64  // business value of a conversion
	Weight      float64  // business lever; default 1
	Group       string   // offers sharing a group are mutually exclusive in one decision; "" for none
	Caps        []Cap    // frequency caps on the offer's impressions
	Suppress    []Suppression
	Prior       Prior         // the Beta prior of its propensity
	Sticky      time.Duration // the catalog's unless the offer sets one
	Start, End  time.Time
	Tags        []string

	content []*Content // by Channel.Index; nil where not offered
	planned bool       // Eligible is planned: Screen judges it (conditions.go)
}

// Cap limits how often an offer is shown: at most Max impressions within
// Within, counted across every channel, or on Channel alone when set.
type Cap struct {
	Max     int
	Within  time.Duration
	Channel *Channel // nil: all channels
}

// Group is a set of mutually exclusive offers with shared caps.
type Group struct {
	Name string
	Caps []Cap // counted over the impressions of every offer of the group
}

// Suppression withholds an offer for For after an outcome of Kind.
type Suppression struct {
	Kind featurestore.Outcome
	For  time.Duration
}

// ContactPolicy caps the offers a customer is shown across all offers and
// channels: at most MaxOffers impressions within Within.
type ContactPolicy struct {
	MaxOffers int
	Within    time.Duration
}

// Content is a channel's creative for an offer, pre-encoded as JSON so
// that a decision never marshals it per request. Content whose strings
// hold templates ({{customer.first_name}}) is Templated: a decision
// renders it for its customer with AppendJSON, and JSON is its rendering
// for a customer of whom nothing is known (the schema's defaults).
type Content struct {
	JSON  json.RawMessage
	Value map[string]any // as written, templates unrendered

	tmpl *template // nil: no templates
}

// ReadsEvent reports whether anything in the catalog reads events of type
// typ: a feature they feed or reset, or, for an outcome type (impression,
// click, conversion, dismiss), the contact history behind caps and
// suppressions and the statistics behind learning and experiment
// measurement. An event of any other type is accepted and changes nothing
// (a misspelt type, such as cart-add for cart_add). Both answers come from
// indexes built once, when the catalog is compiled.
func (c *Catalog) ReadsEvent(typ string) bool {
	if _, outcome := featurestore.ParseOutcome(typ); outcome {
		return true
	}
	return c.Schema.Affects(typ)
}

// Channel returns the channel called name.
func (c *Catalog) Channel(name string) (*Channel, bool) {
	ch, ok := c.channels[name]
	return ch, ok
}

// ChannelNames returns the channel names in declaration order.
func (c *Catalog) ChannelNames() []string {
	names := make([]string, len(c.Channels))
	for i, ch := range c.Channels {
		names[i] = ch.Name
	}
	return names
}

// Offer returns the offer with the given id.
func (c *Catalog) Offer(id string) (*Offer, bool) {
	o, ok := c.offers[id]
	return o, ok
}

// OffersFor returns the offers listed for ch, in declaration order. The
// caller must not modify the slice.
func (c *Catalog) OffersFor(ch *Channel) []*Offer { return c.byChannel[ch.Index] }

// Fallback returns ch's default content, or nil when the catalog has none.
func (c *Catalog) Fallback(ch *Channel) *Content { return c.defaults[ch.Index] }

// Content returns o's content for ch, or nil when o is not offered there.
func (o *Offer) Content(ch *Channel) *Content {
	if ch.Index < len(o.content) {
		return o.content[ch.Index]
	}
	return nil
}

// OfferedOn reports whether o lists ch.
func (o *Offer) OfferedOn(ch *Channel) bool { return o.Content(ch) != nil }

// InPlacement reports whether o may appear in placement p.
func (o *Offer) InPlacement(p string) bool {
	if len(o.Placements) == 0 {
		return true
	}
	for _, q := range o.Placements {
		if q == p {
			return true
		}
	}
	return false
}

// Active reports whether now is inside o's schedule.
func (o *Offer) Active(now time.Time) bool {
	if !o.Start.IsZero() && now.Before(o.Start) {
		return false
	}
	if !o.End.IsZero() && !now.Before(o.End) {
		return false
	}
	return true
}
