package decision

import (
	"fmt"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// contactHold is what a contact-policy check found: the reason an offer is
// held back (Chosen when it is not) and the rule that held it, so that
// ranking and explain read one check. Exactly one rule is set with a
// reason other than Chosen.
type contactHold struct {
	reason   Reason
	policy   *rules.ContactPolicy // PolicyReached
	suppress *rules.Suppression   // Suppressed
	cap      *rules.Cap           // Capped, GroupCapped
	group    *rules.Group         // GroupCapped
}

// catalogPolicy checks the catalog-wide contact policy, which holds back
// every offer of a decision alike.
func catalogPolicy(c *rules.Catalog, req *Request) contactHold {
	p := &c.Policy
	if p.MaxOffers > 0 && countContacts(req.History, "", nil, featurestore.Impression, req.Now.Add(-p.Within)) >= p.MaxOffers {
		return contactHold{reason: PolicyReached, policy: p}
	}
	return contactHold{}
}

// contactPolicy applies o's suppressions and caps, then its group's caps,
// to the customer's contact history for a decision on ch; the first that
// holds o back is the answer. A cap naming a channel limits that channel
// only: it counts that channel's impressions and binds only decisions made
// for it.
func contactPolicy(c *rules.Catalog, o *rules.Offer, ch *rules.Channel, req *Request) contactHold {
	if len(req.History) == 0 {
		return contactHold{}
	}
	for i := range o.Suppress {
		sp := &o.Suppress[i]
		if countContacts(req.History, o.ID, nil, sp.Kind, req.Now.Add(-sp.For)) > 0 {
			return contactHold{reason: Suppressed, suppress: sp}
		}
	}
	for i := range o.Caps {
		cp := &o.Caps[i]
		if cp.Channel != nil && cp.Channel != ch {
			continue
		}
		if countContacts(req.History, o.ID, cp.Channel, featurestore.Impression, req.Now.Add(-cp.Within)) >= cp.Max {
			return contactHold{reason: Capped, cap: cp}
		}
	}
	if g := c.Groups[o.Group]; g != nil && o.Group != "" {
		for i := range g.Caps {
			cp := &g.Caps[i]
			if cp.Channel != nil && cp.Channel != ch {
				continue
			}
			if countGroupContacts(c, req.History, g.Name, cp.Channel, req.Now.Add(-cp.Within)) >= cp.Max {
				return contactHold{reason: GroupCapped, cap: cp, group: g}
			}
		}
	}
	return contactHold{}
}

// detail names, for an explanation, the rule that held the offer back:
// the suppression, cap, group cap or catalog-wide policy; "" when none
// did. Only explain pays for the formatting.
func (h contactHold) detail() string {
	switch h.reason {
	case PolicyReached:
		return fmt.Sprintf("contact_policy: %d offers within %s", h.policy.MaxOffers, rules.FormatDuration(h.policy.Within))
	case Suppressed:
		return fmt.Sprintf("suppress_after: a %s within %s", h.suppress.Kind, rules.FormatDuration(h.suppress.For))
	case Capped:
		return fmt.Sprintf("caps: %s within %s on %s", impressions(h.cap.Max), rules.FormatDuration(h.cap.Within), capChannel(h.cap))
	case GroupCapped:
		return fmt.Sprintf("group %s caps: %s within %s on %s", h.group.Name, impressions(h.cap.Max), rules.FormatDuration(h.cap.Within), capChannel(h.cap))
	}
	return ""
}

// capChannel names the channel a cap counts and binds.
func capChannel(cp *rules.Cap) string {
	if cp.Channel == nil {
		return "all channels"
	}
	return cp.Channel.Name
}

func impressions(n int) string {
	if n == 1 {
		return "1 impression"
	}
	return fmt.Sprintf("%d impressions", n)
}

// countContacts counts the contacts of kind since since, for offer (any
// offer when empty) on ch (any channel when nil). History is oldest first,
// so the scan runs from the newest and stops at since.
func countContacts(h []featurestore.Contact, offer string, ch *rules.Channel, kind featurestore.Outcome, since time.Time) int {
	cut := since.UnixNano()
	n := 0
	for i := len(h) - 1; i >= 0 && h[i].At >= cut; i-- {
		c := &h[i]
		if c.Kind == kind && (offer == "" || c.OfferID == offer) && (ch == nil || c.Channel == ch.Name) {
			n++
		}
	}
	return n
}

// countGroupContacts counts the impressions since since of any offer of
// group, on ch (any channel when nil).
func countGroupContacts(c *rules.Catalog, h []featurestore.Contact, group string, ch *rules.Channel, since time.Time) int {
	cut := since.UnixNano()
	n := 0
	for i := len(h) - 1; i >= 0 && h[i].At >= cut; i-- {
		x := &h[i]
		if x.Kind != featurestore.Impression || (ch != nil && x.Channel != ch.Name) {
			continue
		}
		if o, ok := c.Offer(x.OfferID); ok && o.Group == group {
			n++
		}
	}
	return n
}

// HistoryRead returns the part of the contact history h (oldest first)
// that a decision on c at now can read: the newest contacts, back to
// the first older than c.ContactLookback. Every scan of the history
// (countContacts, countGroupContacts, stickyOffer) runs from the newest
// and stops at its own window's start, which is no earlier, so a
// decision given HistoryRead(c, h, now) in place of h decides alike:
// what the decision log keeps for replay.
func HistoryRead(c *rules.Catalog, h []featurestore.Contact, now time.Time) []featurestore.Contact {
	cut := now.Add(-c.ContactLookback()).UnixNano()
	i := len(h)
	for i > 0 && h[i-1].At >= cut {
		i--
	}
	return h[i:]
}
