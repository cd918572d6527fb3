package nextbest

import (
	"strings"
	"time"

	"github.com/rs/xid"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/decisionlog"
	"github.com/nextbest/nextbest/rules"
)

// OutcomeLog is a decision log that also takes outcome lines
// (decisionlog.Log): the rewards off-policy evaluation joins to the
// logged decisions. AppendOutcome must not block.
type OutcomeLog interface {
	AppendOutcome(o *decisionlog.Outcome) bool
}

// logOutcomes appends to the decision log an outcome line for each
// click, conversion and dismiss of events that took effect (applied)
// and names a decision the log samples. An event with no decision id
// costs a comparison; the decision's sampling is a hash of its id, so
// nothing is looked up. An event without a time is logged at now.
func (s *Service) logOutcomes(cat *rules.Catalog, events []featurestore.Event, applied []bool, now time.Time) {
	if s.declog == nil || s.readOnly {
		return
	}
	ol, ok := s.declog.(OutcomeLog)
	if !ok {
		return
	}
	for i := range events {
		ev := &events[i]
		if ev.DecisionID == "" || !applied[i] {
			continue
		}
		kind, ok := featurestore.ParseOutcome(ev.Type)
		if !ok || kind == featurestore.Impression {
			continue
		}
		id, err := xid.FromString(ev.DecisionID)
		if err != nil || !decisionlog.Sampled(id[:], s.logRate) {
			continue
		}
		o := &decisionlog.Outcome{
			Outcome:    ev.Type,
			DecisionID: id.String(),
			OfferID:    strings.Clone(ev.OfferID),
			Time:       ev.Time,
			CustomerID: strings.Clone(ev.CustomerID),
			Channel:    strings.Clone(ev.Channel),
			EventID:    strings.Clone(ev.ID),
		}
		if o.Time.IsZero() {
			o.Time = now
		}
		if kind == featurestore.Conversion {
			o.Value = conversionValue(cat, ev)
		}
		ol.AppendOutcome(o)
	}
}
