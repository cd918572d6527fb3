package nextbest

import (
	"slices"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// ContactSummary is what a customer's contact history means under a
// catalog at one time: what was last shown of each offer, and which of
// the catalog's contact rules hold offers back, or count towards doing so.
// It counts as decisions do (decision's contactPolicy and channel gate):
// impressions within a cap's window, on the cap's channel when it names
// one; a suppression holds while an outcome of its kind is within its
// period.
type ContactSummary struct {
	// LastImpressions is the newest impression of each offer shown,
	// newest first.
	LastImpressions []LastImpression
	// Suppressions are the offers' suppress_after rules in force, by
	// offer in catalog order.
	Suppressions []ActiveSuppression
	// Caps are the offers' and groups' caps that count at least one
	// impression, offers first (in catalog order) then groups (by name).
	Caps []CapStatus
	// ChannelLimits are the channels' contact_limit, every one declared,
	// in catalog order.
	ChannelLimits []CapStatus
	// Policy is the catalog-wide contact_policy; nil when it has none.
	Policy *CapStatus
}

// LastImpression is the newest impression of an offer.
type LastImpression struct {
	OfferID string
	Channel string
	At      time.Time
}

// ActiveSuppression is an offer held back by its suppress_after rule
// until Until: an outcome of kind Outcome at At.
type ActiveSuppression struct {
	OfferID string
	Outcome featurestore.Outcome
	At      time.Time
	Until   time.Time
}

// CapStatus is a cap and what it counts: Count impressions within Within,
// of Max. Reached says it holds back what it caps, until Until, when
// enough of them leave the window.
type CapStatus struct {
	OfferID string // an offer's cap
	Group   string // a group's cap
	Channel string // the channel it counts and binds; "" for all
	Count   int
	Max     int
	Within  time.Duration
	Reached bool
	Until   time.Time // zero unless Reached
}

// Contacts summarises the contact history h (oldest first, as a record
// holds it) under cat at now.
func Contacts(cat *rules.Catalog, h []featurestore.Contact, now time.Time) ContactSummary {
	var sum ContactSummary
	for i := len(h) - 1; i >= 0; i-- {
		c := &h[i]
		if c.Kind == featurestore.Impression && !slices.ContainsFunc(sum.LastImpressions, func(l LastImpression) bool { return l.OfferID == c.OfferID }) {
			sum.LastImpressions = append(sum.LastImpressions, LastImpression{OfferID: c.OfferID, Channel: c.Channel, At: time.Unix(0, c.At).UTC()})
		}
	}
	for _, o := range cat.Offers {
		for _, sp := range o.Suppress {
			cut := now.Add(-sp.For).UnixNano()
			for i := len(h) - 1; i >= 0 && h[i].At >= cut; i-- {
				if c := &h[i]; c.Kind == sp.Kind && c.OfferID == o.ID {
					at := time.Unix(0, c.At).UTC()
					sum.Suppressions = append(sum.Suppressions, ActiveSuppression{OfferID: o.ID, Outcome: sp.Kind, At: at, Until: at.Add(sp.For)})
					break
				}
			}
		}
		for _, cp := range o.Caps {
			st := capStatus(h, now, &cp, func(c *featurestore.Contact) bool { return c.OfferID == o.ID })
			if st.Count > 0 {
				st.OfferID = o.ID
				sum.Caps = append(sum.Caps, st)
			}
		}
	}
	for _, name := range sortedKeys(cat.Groups) {
		g := cat.Groups[name]
		inGroup := func(c *featurestore.Contact) bool {
			o, ok := cat.Offer(c.OfferID)
			return ok && o.Group == name
		}
		for _, cp := range g.Caps {
			if st := capStatus(h, now, &cp, inGroup); st.Count > 0 {
				st.Group = name
				sum.Caps = append(sum.Caps, st)
			}
		}
	}
	anyOffer := func(*featurestore.Contact) bool { return true }
	for _, ch := range cat.Channels {
		if ch.ContactLimit.Max > 0 {
			sum.ChannelLimits = append(sum.ChannelLimits, capStatus(h, now, &ch.ContactLimit, anyOffer))
		}
	}
	if p := cat.Policy; p.MaxOffers > 0 {
		st := capStatus(h, now, &rules.Cap{Max: p.MaxOffers, Within: p.Within}, anyOffer)
		sum.Policy = &st
	}
	return sum
}

// capStatus counts the impressions of h within cp's window at now, on its
// channel, that match, and says whether and until when cp is reached.
func capStatus(h []featurestore.Contact, now time.Time, cp *rules.Cap, match func(*featurestore.Contact) bool) CapStatus {
	st := CapStatus{Max: cp.Max, Within: cp.Within}
	if cp.Channel != nil {
		st.Channel = cp.Channel.Name
	}
	cut := now.Add(-cp.Within).UnixNano()
	var ats []int64 // oldest first
	for i := range h {
		c := &h[i]
		if c.At >= cut && c.Kind == featurestore.Impression && (cp.Channel == nil || c.Channel == cp.Channel.Name) && match(c) {
			ats = append(ats, c.At)
		}
	}
	st.Count = len(ats)
	if st.Max > 0 && st.Count >= st.Max {
		// Below Max again once the Count-Max+1 oldest have left the
		// window: when the last of them does.
		st.Reached, st.Until = true, time.Unix(0, ats[st.Count-st.Max]).Add(cp.Within).UTC()
	}
	return st
}
