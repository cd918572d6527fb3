package decisionlog

import (
	"fmt"
	"strconv"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/jsonenc"
)

// What a replay of a logged decision needs beyond what it answered: the
// contact history and the learned counts the engine read. Both are
// copied on the decision path into slices of plain structs (one
// allocation each, their strings shared with the immutable record and
// catalog they came from) and encoded here, on the writer's goroutine.

// Contact is one contact of the history a decision read
// (featurestore.Contact).
type Contact struct {
	Offer   string `json:"offer"`
	Channel string `json:"channel"`
	Kind    string `json:"kind"` // impression, click, conversion or dismiss
	At      int64  `json:"at"`   // Unix nanoseconds
}

// SetContacts has the entry log the contact history h.
func (e *Entry) SetContacts(h []featurestore.Contact) {
	if len(h) == 0 {
		e.Contacts = nil
		return
	}
	e.Contacts = make([]Contact, len(h))
	for i := range h {
		c := &h[i]
		e.Contacts[i] = Contact{Offer: c.OfferID, Channel: c.Channel, Kind: c.Kind.String(), At: c.At}
	}
}

// History returns the contacts as the engine reads them; a contact of a
// kind it does not know is an error.
func (e *Entry) History() ([]featurestore.Contact, error) {
	if len(e.Contacts) == 0 {
		return nil, nil
	}
	h := make([]featurestore.Contact, len(e.Contacts))
	for i, c := range e.Contacts {
		k, ok := featurestore.ParseOutcome(c.Kind)
		if !ok {
			return nil, &contactError{i: i, kind: c.Kind}
		}
		h[i] = featurestore.Contact{OfferID: c.Offer, Channel: c.Channel, Kind: k, At: c.At}
	}
	return h, nil
}

type contactError struct {
	i    int
	kind string
}

func (e *contactError) Error() string {
	return "contacts[" + strconv.Itoa(e.i) + "]: " + strconv.Quote(e.kind) + " is not a contact kind"
}

// Learned is the counts of one learning cell a decision's score read.
type Learned struct {
	Offer       string  `json:"offer"`
	Channel     string  `json:"channel"`
	Key         string  `json:"key,omitempty"` // the learn key; "" when the catalog learns by nothing
	Decisions   int64   `json:"decisions,omitempty"`
	Impressions int64   `json:"impressions,omitempty"`
	Clicks      int64   `json:"clicks,omitempty"`
	Conversions int64   `json:"conversions,omitempty"`
	Dismisses   int64   `json:"dismisses,omitempty"`
	Value       float64 `json:"value,omitempty"`
}

// Counts returns l's counts.
func (l *Learned) Counts() featurestore.Counts {
	return featurestore.Counts{Decisions: l.Decisions, Impressions: l.Impressions, Clicks: l.Clicks,
		Conversions: l.Conversions, Dismisses: l.Dismisses, Value: l.Value}
}

// LearnedOf returns the Learned of the cell of offer on channel for
// key with counts n.
func LearnedOf(offer, channel, key string, n featurestore.Counts) Learned {
	return Learned{Offer: offer, Channel: channel, Key: key, Decisions: n.Decisions, Impressions: n.Impressions,
		Clicks: n.Clicks, Conversions: n.Conversions, Dismisses: n.Dismisses, Value: n.Value}
}

// appendReplay appends the contacts and the learned counts of e, each
// a member of the entry's object preceded by its comma.
func (e *Entry) appendReplay(b []byte) []byte {
	if len(e.Contacts) > 0 {
		b = append(b, `,"contacts":[`...)
		for i := range e.Contacts {
			c := &e.Contacts[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"offer":`...)
			b = jsonenc.AppendString(b, c.Offer)
			b = append(b, `,"channel":`...)
			b = jsonenc.AppendString(b, c.Channel)
			b = append(b, `,"kind":`...)
			b = jsonenc.AppendString(b, c.Kind)
			b = append(b, `,"at":`...)
			b = strconv.AppendInt(b, c.At, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(e.Learned) > 0 {
		b = append(b, `,"learned":[`...)
		for i := range e.Learned {
			l := &e.Learned[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"offer":`...)
			b = jsonenc.AppendString(b, l.Offer)
			b = append(b, `,"channel":`...)
			b = jsonenc.AppendString(b, l.Channel)
			b = appendOptString(b, "key", l.Key)
			b = appendOptInt(b, "decisions", l.Decisions)
			b = appendOptInt(b, "impressions", l.Impressions)
			b = appendOptInt(b, "clicks", l.Clicks)
			b = appendOptInt(b, "conversions", l.Conversions)
			b = appendOptInt(b, "dismisses", l.Dismisses)
			if l.Value != 0 {
				b = append(b, `,"value":`...)
				b = jsonenc.AppendFloat(b, l.Value)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return b
}

func appendOptInt(b []byte, name string, n int64) []byte {
	if n == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, n, 10)
}

// LoggedFeatures returns the entry's features by schema name: Features,
// or, for an entry not read back from a log, those SetFeatures encoded.
func (e *Entry) LoggedFeatures() (Fields, error) {
	if e.features == nil {
		return e.Features, nil
	}
	var fs Fields
	if err := fs.UnmarshalJSON(e.features); err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	return fs, nil
}
