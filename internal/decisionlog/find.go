package decisionlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
)

// entryStart is how every decision's line begins, its id next.
var entryStart = []byte(`{"id":"`)

// Find returns the entries of the decisions ids in the log in dir, in
// the order written, for tools that look up a few decisions of a
// stopped node's log (nextbest replay ID). Like Lookup it keeps no
// index: it reads every line's id where it starts, and decodes only the
// lines of ids, where Read decodes every entry (a 100,000-entry log:
// BenchmarkFind, docs/benchmarks.md "Issue 14: a smaller logged entry").
// It stops once every id is found. A matching line that does not decode
// yields an error naming its segment and line, and finding goes on; so
// does an error reading a segment, with the next one (as Read). Each
// Entry yielded is the caller's.
func Find(dir string, ids []string) iter.Seq2[*Entry, error] {
	return func(yield func(*Entry, error) bool) {
		want := make(map[string]bool, len(ids))
		for _, id := range ids {
			want[id] = false
		}
		left := len(want)
		if left == 0 {
			return
		}
		seqs, err := segments(dir)
		if err != nil {
			yield(nil, fmt.Errorf("decision log: %w", err))
			return
		}
		for _, seq := range seqs {
			name := (&segment{seq: seq}).name()
			f, err := os.Open(filepath.Join(dir, name))
			if errors.Is(err, os.ErrNotExist) {
				continue // removed by retention meanwhile
			}
			if err != nil {
				yield(nil, fmt.Errorf("decision log: %w", err))
				return
			}
			more, err := findIn(f, name, want, &left, yield)
			f.Close()
			if err != nil && !yield(nil, fmt.Errorf("decision log: %s: %w", name, err)) {
				return
			}
			if !more || left == 0 {
				return
			}
		}
	}
}

// findIn yields the entries of one segment whose ids want holds and has
// not found yet, counting those found off left. It returns whether to
// go on with the next segment, and the error that ended this one's
// reading.
func findIn(f *os.File, name string, want map[string]bool, left *int, yield func(*Entry, error) bool) (bool, error) {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine+1)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if !bytes.HasPrefix(b, entryStart) {
			continue // an outcome line, a blank or corrupt one
		}
		id := b[len(entryStart):]
		end := bytes.IndexByte(id, '"')
		if end < 0 {
			continue
		}
		id = id[:end]
		found, ok := want[string(id)] // no allocation: the compiler's map lookup by []byte
		if bytes.IndexByte(id, '\\') >= 0 {
			// An id with an escape (never an xid): decode it to compare.
			var e struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(b, &e) != nil {
				continue
			}
			found, ok = want[e.ID]
		}
		if !ok || found {
			continue
		}
		e := new(Entry)
		if err := json.Unmarshal(b, e); err != nil {
			if !yield(nil, fmt.Errorf("decision log: %s: line %d: %w: %v", name, line, ErrCorrupt, err)) {
				return false, nil
			}
			continue
		}
		want[e.ID] = true
		*left--
		if !yield(e, nil) {
			return false, nil
		}
		if *left == 0 {
			return false, nil
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return true, fmt.Errorf("line %d: longer than %d bytes, the rest is not read", line+1, maxLine)
		}
		return true, err
	}
	return true, nil
}
