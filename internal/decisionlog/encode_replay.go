package decisionlog

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/jsonenc"
)

// What a replay of a logged decision needs beyond what it answered: the
// contact history and the learned counts the engine read. Like the
// features (SetFeatures), both are encoded on the decision path at once
// into bytes the entry owns, one allocation each without pointers,
// which the collector does not scan, rather than copied as structs
// holding strings (a Contact is 3 pointers in 56 bytes) that it would.
//
// Their forms are compact, since a logged decision's cost is mostly per
// byte (encoding, writing; BenchmarkDecideLoggedHistory): a contact is
// an array [offer, channel, kind, at] (about 50 bytes, where an object
// with its keys took 85). A learned cell is an object naming its offer,
// channel and key, the latter two those of the entry (the cells a
// decision's scores read are all of its channel and learn key), kept in
// each cell so that a reader (nextbest evaluate) need not know it.

// Contact is one contact of the history a decision read
// (featurestore.Contact). It is logged as the array [offer, channel,
// kind, at].
type Contact struct {
	Offer   string
	Channel string
	Kind    string // impression, click, conversion or dismiss
	At      int64  // Unix nanoseconds
}

// MarshalJSON encodes c as its array.
func (c Contact) MarshalJSON() ([]byte, error) {
	return appendContact(nil, c.Offer, c.Channel, c.Kind, c.At), nil
}

// UnmarshalJSON decodes c from its array.
func (c *Contact) UnmarshalJSON(b []byte) error {
	var a []json.RawMessage
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if len(a) != 4 {
		return fmt.Errorf("a contact is [offer, channel, kind, at], got %d elements", len(a))
	}
	for i, dst := range []any{&c.Offer, &c.Channel, &c.Kind, &c.At} {
		if err := json.Unmarshal(a[i], dst); err != nil {
			return fmt.Errorf("contact element %d: %w", i, err)
		}
	}
	return nil
}

func appendContact(b []byte, offer, channel, kind string, at int64) []byte {
	b = append(b, '[')
	b = jsonenc.AppendString(b, offer)
	b = append(b, ',')
	b = jsonenc.AppendString(b, channel)
	b = append(b, ',')
	b = jsonenc.AppendString(b, kind)
	b = append(b, ',')
	b = strconv.AppendInt(b, at, 10)
	return append(b, ']')
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
	// Under the catalog's learning model: the model's predictive mean and
	// variance of the offer's success rate for the customer, and the
	// impressions of the model's total cell (decision.LearnedRead).
	Model            bool    `json:"model,omitempty"`
	ModelMean        float64 `json:"model_mean,omitempty"`
	ModelVariance    float64 `json:"model_variance,omitempty"`
	ModelImpressions int64   `json:"model_impressions,omitempty"`
}

// Counts returns l's counts.
func (l *Learned) Counts() featurestore.Counts {
	return featurestore.Counts{Decisions: l.Decisions, Impressions: l.Impressions, Clicks: l.Clicks,
		Conversions: l.Conversions, Dismisses: l.Dismisses, Value: l.Value}
}

// SetContacts has the entry log the contact history h, in place of
// Contacts, encoded at once.
func (e *Entry) SetContacts(h []featurestore.Contact) {
	if len(h) == 0 {
		e.contacts = nil
		return
	}
	// The size but for escapes: 41 bytes of JSON a contact with the
	// longest kind and a 19-digit time, so the buffer never grows.
	n := 2
	for i := range h {
		n += len(h[i].OfferID) + len(h[i].Channel) + 42
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i := range h {
		c := &h[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendContact(b, c.OfferID, c.Channel, c.Kind.String(), c.At)
	}
	e.contacts = append(b, ']')
}

// SetLearned has the entry log, in place of Learned, the learned counts
// of n cells of channel and key that a decision's scores read: cell(i)
// is the i-th's offer and counts, and model its learning model's read
// (nil when the catalog has no model).
func (e *Entry) SetLearned(channel, key string, n int, cell func(i int) (offer string, c featurestore.Counts, model *Learned)) {
	if n == 0 {
		e.learned = nil
		return
	}
	b := make([]byte, 0, 2+n*(len(channel)+len(key)+192)) // offer ids of up to 64 bytes, six counts
	b = append(b, '[')
	for i := range n {
		offer, c, m := cell(i)
		if i > 0 {
			b = append(b, ',')
		}
		b = appendLearned(b, offer, channel, key, &c, m)
	}
	e.learned = append(b, ']')
}

// appendLearned appends one cell's object; m, when not nil, holds its
// model fields.
func appendLearned(b []byte, offer, channel, key string, c *featurestore.Counts, m *Learned) []byte {
	b = append(b, `{"offer":`...)
	b = jsonenc.AppendString(b, offer)
	b = append(b, `,"channel":`...)
	b = jsonenc.AppendString(b, channel)
	b = appendOptString(b, "key", key)
	b = appendOptInt(b, "decisions", c.Decisions)
	b = appendOptInt(b, "impressions", c.Impressions)
	b = appendOptInt(b, "clicks", c.Clicks)
	b = appendOptInt(b, "conversions", c.Conversions)
	b = appendOptInt(b, "dismisses", c.Dismisses)
	if c.Value != 0 {
		b = append(b, `,"value":`...)
		b = jsonenc.AppendFloat(b, c.Value)
	}
	if m != nil && m.Model {
		b = append(b, `,"model":true,"model_mean":`...)
		b = jsonenc.AppendFloat(b, m.ModelMean)
		b = append(b, `,"model_variance":`...)
		b = jsonenc.AppendFloat(b, m.ModelVariance)
		b = appendOptInt(b, "model_impressions", m.ModelImpressions)
	}
	return append(b, '}')
}

// appendReplay appends the contacts and the learned counts of e, each
// a member of the entry's object preceded by its comma.
func (e *Entry) appendReplay(b []byte) []byte {
	switch {
	case e.contacts != nil:
		b = append(b, `,"contacts":`...)
		b = append(b, e.contacts...)
	case len(e.Contacts) > 0:
		b = append(b, `,"contacts":[`...)
		for i, c := range e.Contacts {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendContact(b, c.Offer, c.Channel, c.Kind, c.At)
		}
		b = append(b, ']')
	}
	if e.ContactsOmitted > 0 {
		b = append(b, `,"contacts_omitted":`...)
		b = strconv.AppendInt(b, int64(e.ContactsOmitted), 10)
		b = append(b, `,"contacts_omitted_at":`...)
		b = strconv.AppendInt(b, e.ContactsOmittedAt, 10)
	}
	switch {
	case e.learned != nil:
		b = append(b, `,"learned":`...)
		b = append(b, e.learned...)
	case len(e.Learned) > 0:
		b = append(b, `,"learned":[`...)
		for i := range e.Learned {
			if i > 0 {
				b = append(b, ',')
			}
			l := &e.Learned[i]
			c := l.Counts()
			b = appendLearned(b, l.Offer, l.Channel, l.Key, &c, l)
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

// LoggedLearned returns the entry's learned counts: Learned, or those
// SetLearned encoded.
func (e *Entry) LoggedLearned() ([]Learned, error) {
	if e.learned == nil {
		return e.Learned, nil
	}
	var ls []Learned
	if err := json.Unmarshal(e.learned, &ls); err != nil {
		return nil, fmt.Errorf("learned: %w", err)
	}
	return ls, nil
}

// History returns the contacts (Contacts, or those SetContacts encoded)
// as the engine reads them; a contact of a kind it does not know is an
// error.
func (e *Entry) History() ([]featurestore.Contact, error) {
	cs := e.Contacts
	if e.contacts != nil {
		if err := json.Unmarshal(e.contacts, &cs); err != nil {
			return nil, fmt.Errorf("contacts: %w", err)
		}
	}
	if len(cs) == 0 {
		return nil, nil
	}
	h := make([]featurestore.Contact, len(cs))
	for i, c := range cs {
		k, ok := featurestore.ParseOutcome(c.Kind)
		if !ok {
			return nil, fmt.Errorf("contacts[%d]: %q is not a contact kind", i, c.Kind)
		}
		h[i] = featurestore.Contact{OfferID: c.Offer, Channel: c.Channel, Kind: k, At: c.At}
	}
	return h, nil
}
