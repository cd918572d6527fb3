package decisionlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/jsonenc"
)

// Entry is one logged decision.
type Entry struct {
	ID         string    `json:"id"` // the decision id (an xid)
	Time       time.Time `json:"time"`
	CustomerID string    `json:"customer_id,omitempty"` // "" for an anonymous visitor
	// DecidedFor is the customer the decision was made for when the
	// request named an alias merged into it; "" when the same.
	DecidedFor string `json:"decided_for,omitempty"`
	Channel    string `json:"channel"`
	Placement  string `json:"placement,omitempty"`
	Limit      int    `json:"limit"`
	Catalog    string `json:"catalog"` // the version of the catalog that decided
	// Explore is how the decision used the learned posteriors:
	// thompson, greedy or static.
	Explore  string    `json:"explore"`
	Variants []Variant `json:"variants,omitempty"`
	Holdout  bool      `json:"holdout,omitempty"`
	Segments []string  `json:"segments,omitempty"`
	LearnKey string    `json:"learn_key,omitempty"`
	// Degraded says why the stored features were not read ("" when they
	// were): the features logged are then the schema's defaults.
	Degraded string  `json:"degraded,omitempty"`
	Offers   []Offer `json:"offers"`
	// PropensitySamples is the number of re-draws each offer's
	// Propensity was estimated from; 0 when the decision does not explore
	// (every propensity is then exactly 1).
	PropensitySamples int `json:"propensity_samples"`
	// Features are the customer's feature values the rules read, by
	// schema name; Context the request's attributes.
	Features Fields         `json:"features,omitempty"`
	Context  map[string]any `json:"context,omitempty"`
	// Contacts are the customer's contact history the decision read
	// (caps, suppressions, stickiness), oldest first, back to the
	// catalog's longest look-back; Learned the
	// learned counts its scores read. With the features, the context and
	// the id's seed they are all a replay needs (encode_replay.go).
	Contacts []Contact `json:"contacts,omitempty"`
	Learned  []Learned `json:"learned,omitempty"`
	// ContactsOmitted is the number of the customer's oldest contacts
	// left out of Contacts: those before the catalog's longest
	// look-back (rules.Catalog.ContactLookback), which none of its rules
	// read (decision.HistoryRead). ContactsOmittedAt is the time of the
	// last of them (Unix nanoseconds): a catalog whose look-back reaches
	// it would have read it.
	ContactsOmitted   int   `json:"contacts_omitted,omitempty"`
	ContactsOmittedAt int64 `json:"contacts_omitted_at,omitempty"`

	// The features set by SetFeatures, encoded, written in place of
	// Features.
	features []byte
	// An outcome line (outcome.go) queued as an entry: written in its
	// place.
	outcome *Outcome
	// The contacts and learned counts set by SetContacts and SetLearned,
	// encoded, written in place of Contacts and Learned
	// (encode_replay.go).
	contacts, learned []byte
	// spare is the room of a recycled entry's features, for SetFeatures.
	spare []byte
}

// entries are the Entries a Log has written, for NewEntry: a logged
// decision then allocates only the strings it must copy, not the entry,
// its offers and its features' buffer (BenchmarkDecideLoggedBench).
var entries sync.Pool

// NewEntry returns an empty Entry, reusing one a Log has written when
// there is one: its slices keep their room.
func NewEntry() *Entry {
	if e, ok := entries.Get().(*Entry); ok {
		return e
	}
	return new(Entry)
}

// recycle empties e, keeping the room of its slices, for NewEntry. Only
// a Log recycles, and only the entries appended to it, which are its.
func recycle(e *Entry) {
	clear(e.Offers)
	clear(e.Segments)
	clear(e.Variants)
	clear(e.Learned)
	spare := e.spare
	if cap(e.features) > cap(spare) {
		spare = e.features[:0]
	}
	*e = Entry{Offers: e.Offers[:0], Segments: e.Segments[:0], Variants: e.Variants[:0], Learned: e.Learned[:0], spare: spare}
	entries.Put(e)
}

// SetFeatures has the entry log the feature values v of schema s, in
// place of Features. They are encoded at once into bytes the entry
// owns: one allocation without pointers, which the garbage collector
// does not scan, where a copy of the vector (72 bytes a value, strings
// copied) cost a logged decision 5 times more CPU, most of it the
// collector's (BenchmarkDecideLogged, 22.9 CPU-µs a decision).
func (e *Entry) SetFeatures(s *featurestore.Schema, v featurestore.Vector) {
	feats := s.Features()
	if len(v) != len(feats) || len(feats) == 0 {
		e.features = nil
		return
	}
	keys := keysOf(s)
	n := len(keys.buf) + 2
	for i := range v {
		n += len(v[i].Str) + 24
		for _, x := range v[i].List {
			n += len(x) + 3
		}
	}
	b := e.spare[:0]
	e.spare = nil
	if cap(b) < n {
		b = make([]byte, 0, n)
	}
	b = append(b, '{')
	start := 0
	for i, end := range keys.ends {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, keys.buf[start:end]...)
		start = end
		b = v[i].AppendJSON(b)
	}
	e.features = append(b, '}')
}

// schemaKeys are a schema's feature names encoded as the keys of a JSON
// object, `"name":` one after the other, each ending at its end: what
// SetFeatures would otherwise quote again for every entry (a fifth of
// its time, BenchmarkSetFeatures).
type schemaKeys struct {
	schema *featurestore.Schema
	buf    []byte
	ends   []int
}

// lastKeys are the keys of the schema SetFeatures saw last: a node
// decides on one catalog at a time, whose schema changes only with a
// reload.
var lastKeys atomic.Pointer[schemaKeys]

func keysOf(s *featurestore.Schema) *schemaKeys {
	if k := lastKeys.Load(); k != nil && k.schema == s {
		return k
	}
	k := &schemaKeys{schema: s}
	for _, f := range s.Features() {
		k.buf = jsonenc.AppendString(k.buf, f.Name)
		k.buf = append(k.buf, ':')
		k.ends = append(k.ends, len(k.buf))
	}
	lastKeys.Store(k)
	return k
}

// Variant is an experiment variant the customer was assigned.
type Variant struct {
	Experiment string `json:"experiment"`
	Variant    string `json:"variant"`
}

// Offer is one offer the decision returned, in rank order.
type Offer struct {
	ID    string  `json:"id"`
	Score float64 `json:"score"`
	// Draw is the propensity the score used: sampled from the posterior
	// under Thompson sampling, its mean otherwise.
	Draw float64 `json:"draw"`
	// Propensity is the probability that the decision chose this offer
	// under its policy (decision.Choice.Selection).
	Propensity float64 `json:"propensity"`
}

// maxLine bounds one line of a log: an entry larger is not written
// (Log counts it as dropped), and a reader takes a longer line for
// corruption.
const maxLine = 1 << 20

// Reader reads the entries of one segment, or any stream of JSON lines.
type Reader struct {
	sc   *bufio.Scanner
	line int
	off  int64 // of the next line
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine+1)
	return &Reader{sc: sc}
}

// ErrCorrupt is wrapped by the error of a line that is not an entry.
var ErrCorrupt = errors.New("not a decision log entry")

// Next decodes the next entry into e. It returns io.EOF at the end; an
// error wrapping ErrCorrupt for a line that is not an entry, after which
// Next goes on with the following line; any other error ends the
// stream.
func (r *Reader) Next(e *Entry) error {
	for r.sc.Scan() {
		r.line++
		b := r.sc.Bytes()
		r.off += int64(len(b)) + 1
		if len(bytes.TrimSpace(b)) == 0 || isOutcome(b) {
			continue // an outcome line (outcome.go) is not a decision
		}
		*e = Entry{}
		if err := json.Unmarshal(b, e); err != nil {
			return fmt.Errorf("line %d: %w: %v", r.line, ErrCorrupt, err)
		}
		if e.ID == "" {
			return fmt.Errorf("line %d: %w: no id", r.line, ErrCorrupt)
		}
		return nil
	}
	if err := r.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d: longer than %d bytes, the rest is not read", r.line+1, maxLine)
		}
		return err
	}
	return io.EOF
}
