package embedded

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// ScanCustomers returns, in pages of at most count, the ids of the
// customers the store holds a record of, in byte order of id: those after
// cursor ("" for the first page), and the cursor of the next page ("" once
// none is left). The cursor is the last id of the page, so resuming after
// a customer is ScanCustomers(ctx, id, count): a scan is ordered by id.
//
// Each page is one pebble iterator over the record keys from the cursor
// on, so a scan holds no snapshot between pages (a customer created
// behind it is not seen, one created ahead of it is) and its memory is
// one page of ids. It reads every record's block from disk or the block
// cache: a scan of every customer costs a read of the whole record key
// space (docs/benchmarks.md, issue 13).
func (s *Store) ScanCustomers(ctx context.Context, cursor string, count int) (ids []string, next string, err error) {
	if count <= 0 {
		return nil, "", fmt.Errorf("embedded: scan: count %d, must be positive", count)
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, "", ErrClosed
	}
	lower := []byte(customerPrefix)
	if cursor != "" {
		// Strictly after the cursor: its key followed by a zero byte is
		// the smallest key above it.
		lower = append(recordKey(nil, cursor), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(customerPrefix)})
	if err != nil {
		return nil, "", fmt.Errorf("embedded: scan: %w", err)
	}
	ids = make([]string, 0, min(count, 1024))
	for valid := it.First(); valid && len(ids) < count; valid = it.Next() {
		ids = append(ids, string(it.Key()[len(customerPrefix):]))
		if len(ids)%256 == 0 && ctx.Err() != nil {
			break
		}
	}
	more := it.Valid() && len(ids) == count
	err = errors.Join(it.Error(), it.Close())
	if err != nil {
		return nil, "", fmt.Errorf("embedded: scan: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if more {
		next = ids[len(ids)-1]
	}
	return ids, next, nil
}
