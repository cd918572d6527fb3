package decision

import (
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// Reasons a channel's policy withholds a whole decision: no offers and no
// fallback (Result.Suppressed). An explanation gives every offer of the
// channel the same reason.
const (
	ChannelIneligible Reason = "channel_ineligible" // the channel's eligible rule (consent) is false or failed
	QuietHours        Reason = "quiet_hours"        // now is inside the channel's quiet hours in the customer's zone
	ContactLimit      Reason = "contact_limit"      // the channel's contact limit is reached
)

// Suppression says why a channel's policy withheld a whole decision.
type Suppression struct {
	Reason Reason // "" when the channel answered
	// Rule is what withheld it: the failing part of the channel's
	// eligible rule, or the quiet hours or contact limit as written.
	Rule  string
	Error string // the eligible rule's run-time error, if it failed
}

// gate applies the channel's policy before any offer is judged, in the
// order a campaign is refused: consent (eligible), quiet hours, then the
// contact limit across the channel's offers. It reports whether the
// channel answers, and how many offers it may answer out of limit: no
// more than the impressions left under its contact limit, as each offer
// sent is one. When it does not answer, res.Suppressed says why and, for
// quiet hours, res.NextAllowedAt when it will answer again.
func (s *scratch) gate(res *Result, limit int) (int, bool) {
	ch, req := s.ch, s.req
	if ch.Eligible != nil {
		ok, part, err := ch.Eligible.Explain(&s.env)
		if !ok {
			// A rule that fails at run time withholds too: consent
			// that cannot be read is not given.
			res.Suppressed = Suppression{Reason: ChannelIneligible, Rule: part}
			if err != nil {
				res.Suppressed.Rule, res.Suppressed.Error = ch.Eligible.Source, err.Error()
			}
			return 0, false
		}
	}
	if q := ch.Quiet; q != nil {
		if next, quiet := QuietUntil(q, req.Now.In(q.Location(s.env.Customer))); quiet {
			res.Suppressed = Suppression{Reason: QuietHours, Rule: q.Rule}
			res.NextAllowedAt = next
			return 0, false
		}
	}
	if cp := &ch.ContactLimit; cp.Max > 0 {
		left := cp.Max - countContacts(req.History, "", ch, featurestore.Impression, req.Now.Add(-cp.Within))
		if left <= 0 {
			res.Suppressed = Suppression{Reason: ContactLimit, Rule: ch.LimitRule}
			return 0, false
		}
		limit = min(limit, left)
	}
	return limit, true
}

// explainGated explains a decision the channel's policy withheld: every
// offer of the channel has the policy's reason, every other offer
// wrong_channel.
func (s *scratch) explainGated(res *Result) {
	for _, o := range s.c.Offers {
		x := Explanation{OfferID: o.ID, Reason: WrongChannel, Value: o.Value, Weight: o.Weight}
		if o.OfferedOn(s.ch) {
			x.Reason, x.Rule, x.Error = res.Suppressed.Reason, res.Suppressed.Rule, res.Suppressed.Error
		}
		res.Explain = append(res.Explain, x)
	}
}

// QuietUntil reports whether t, in the zone the quiet hours are read in,
// is inside q, and if so the next instant outside them: the first instant
// at which the local clock reads q.To. Where a daylight-saving change
// skips q.To, that is the instant of the change; where it repeats q.To,
// the first of the two.
func QuietUntil(q *rules.QuietHours, t time.Time) (time.Time, bool) {
	h, m, sec := t.Clock()
	now := h*3600 + m*60 + sec
	var quiet bool
	if q.From < q.To {
		quiet = now >= q.From && now < q.To
	} else {
		quiet = now >= q.From || now < q.To
	}
	if !quiet {
		return time.Time{}, false
	}
	y, mo, d := t.Date()
	if q.From > q.To && now >= q.From {
		d++ // the quiet hours end tomorrow
	}
	return wallClock(y, mo, d, q.To, t.Location()), true
}

// wallClock returns the first instant at which the clock of loc reads
// second sec of the day y-mo-d (time.Date does not say which of two
// instants it picks when the clock reads it twice, nor what it gives
// when the clock skips it).
func wallClock(y int, mo time.Month, d, sec int, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, sec/3600, sec%3600/60, sec%60, 0, loc)
	want := time.Date(y, mo, d, sec/3600, sec%3600/60, sec%60, 0, time.UTC)
	if got := asUTC(t); !got.Equal(want) {
		// Skipped: the clock jumped over it, at a zone boundary next
		// to t, which is the first instant whose clock reads later.
		start, end := t.ZoneBounds()
		if got.Before(want) {
			return end
		}
		return start
	}
	// Repeated: the same clock an offset earlier, in the zone before a
	// change that set the clock back, comes first.
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return t
	}
	_, off := t.Zone()
	_, prevOff := start.Add(-time.Nanosecond).Zone()
	if back := time.Duration(prevOff-off) * time.Second; back > 0 {
		if e := t.Add(-back); e.Before(start) && asUTC(e).Equal(want) {
			return e
		}
	}
	return t
}

// asUTC returns t's wall clock in its zone as the same clock in UTC, so
// two wall clocks compare as instants do.
func asUTC(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, m, s := t.Clock()
	return time.Date(y, mo, d, h, m, s, 0, time.UTC)
}
