package decisionlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"time"
)

// Outcome lines: what became of a logged decision's offers, for
// off-policy evaluation to join to the decision by its id. An outcome
// event (click, conversion, dismiss) that names a decision the log
// samples (Sampled on its id: the same choice the decision made, with
// no lookup) is written to the log as one line among the decisions':
//
//	{"outcome":"conversion","decision_id":"d5…","offer_id":"o","time":"…","customer_id":"c","channel":"web","value":12.5,"event_id":"e"}
//
// The key "outcome" comes first, and a decision's line starts with
// {"id":, so a reader tells them apart by the first bytes. Read and
// Lookup see only decisions; Records sees both. An outcome line goes
// through the same bounded queue as a decision (Append): it never
// blocks, and a full queue drops it, counted.

// Outcome is one outcome event of a logged decision.
type Outcome struct {
	// Outcome is the event's type: click, conversion or dismiss.
	Outcome    string    `json:"outcome"`
	DecisionID string    `json:"decision_id"`
	OfferID    string    `json:"offer_id,omitempty"` // "" for a conversion credited to no offer
	Time       time.Time `json:"time"`
	CustomerID string    `json:"customer_id,omitempty"`
	Channel    string    `json:"channel,omitempty"`
	// Value is a conversion's value (its properties.value, or its
	// offer's value); 0 for other outcomes.
	Value   float64 `json:"value,omitempty"`
	EventID string  `json:"event_id,omitempty"`
}

// outcomePrefix starts every outcome line and no decision's.
var outcomePrefix = []byte(`{"outcome":`)

func isOutcome(line []byte) bool { return bytes.HasPrefix(line, outcomePrefix) }

// AppendOutcome queues o for the writer, like Append: it never blocks,
// and reports whether o was taken. o belongs to the Log.
func (l *Log) AppendOutcome(o *Outcome) bool {
	return l.Append(&Entry{ID: o.DecisionID, Time: o.Time, outcome: o})
}

// appendJSON appends o's line, without its newline.
func (o *Outcome) appendJSON(b []byte) ([]byte, error) {
	if o.Outcome == "" || o.DecisionID == "" {
		return b, errors.New("an outcome needs its type and decision id")
	}
	j, err := json.Marshal(o)
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}

// Record is one line of a log: a decision (Entry) or an outcome
// (Outcome), the other nil.
type Record struct {
	Entry   *Entry
	Outcome *Outcome
}

// NextRecord decodes the next line, a decision into e or an outcome
// into o, and returns which in a Record pointing at one of them. Errors
// are Next's.
func (r *Reader) NextRecord(e *Entry, o *Outcome) (Record, error) {
	for r.sc.Scan() {
		r.line++
		b := r.sc.Bytes()
		r.off += int64(len(b)) + 1
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		if isOutcome(b) {
			*o = Outcome{}
			if err := json.Unmarshal(b, o); err != nil {
				return Record{}, fmt.Errorf("line %d: %w: %v", r.line, ErrCorrupt, err)
			}
			if o.DecisionID == "" {
				return Record{}, fmt.Errorf("line %d: %w: an outcome with no decision_id", r.line, ErrCorrupt)
			}
			return Record{Outcome: o}, nil
		}
		*e = Entry{}
		if err := json.Unmarshal(b, e); err != nil {
			return Record{}, fmt.Errorf("line %d: %w: %v", r.line, ErrCorrupt, err)
		}
		if e.ID == "" {
			return Record{}, fmt.Errorf("line %d: %w: no id", r.line, ErrCorrupt)
		}
		return Record{Entry: e}, nil
	}
	if err := r.sc.Err(); err != nil {
		return Record{}, fmt.Errorf("line %d: %w", r.line+1, err)
	}
	return Record{}, io.EOF
}

// Records returns the decisions and outcomes of the log in dir in the
// order written, as Read does the decisions alone. An outcome is
// written after its decision, but maybe in a later segment, and one
// whose decision was dropped or is past retention has none: a reader
// joins them by id. The Entry and Outcome yielded are reused by the
// next iteration.
func Records(dir string) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		seqs, err := segments(dir)
		if err != nil {
			yield(Record{}, fmt.Errorf("decision log: %w", err))
			return
		}
		var e Entry
		var o Outcome
		for _, seq := range seqs {
			name := (&segment{seq: seq}).name()
			f, err := os.Open(filepath.Join(dir, name))
			if errors.Is(err, os.ErrNotExist) {
				continue // removed by retention meanwhile
			}
			if err != nil {
				yield(Record{}, fmt.Errorf("decision log: %w", err))
				return
			}
			r := NewReader(f)
			for {
				rec, err := r.NextRecord(&e, &o)
				if err == io.EOF {
					break
				}
				if err != nil {
					if !yield(Record{}, fmt.Errorf("decision log: %s: %w", name, err)) {
						f.Close()
						return
					}
					if errors.Is(err, ErrCorrupt) {
						continue
					}
					break
				}
				if !yield(rec, nil) {
					f.Close()
					return
				}
			}
			f.Close()
		}
	}
}
