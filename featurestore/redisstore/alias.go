package redisstore

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest/featurestore"
)

// Aliases (featurestore.Merge). An id merged into another customer keeps
// its hash, `<prefix>{<id>}`, with the field "a" holding the customer it
// was merged into and no record ("r"); Load and every write read "a" in
// the command that reads the record, so aliases cost no round trip. The
// customer merged into keeps, in its hash, a guard field "m:<id>" per id
// merged into it, and the set `<prefix>{<customer>}:aliases` of every id
// that resolves to it (RemoveAliases), each in the customer's own slot.
//
// The two ids of a merge are two hash tags, so in a Redis Cluster they
// are usually in two slots, on two masters, and no one command or script
// touches both. The merge is a protocol of three steps, each one script
// on one customer's keys, safe to interrupt anywhere and to run again
// from the start, on any node (the same protocol runs on a standalone
// server, so the one tested everywhere is the one in production):
//
//  1. Intent: on From's hash, if its version is the one read and it is
//     not an alias, set "a" = Into and bump the version. From is now an
//     alias: its record is frozen (every write of it reads "a" and is
//     redirected; a write that read From before fails its
//     compare-and-set on the version and then reads "a"), and late events
//     and decisions for From go to Into.
//  2. Apply: on Into's hash, if its version is the one read and it holds
//     no guard "m:<From>", write Into's record with From's frozen record
//     folded in, the guard, and From and From's own aliases into Into's
//     alias set, in one script. The guard is what makes the fold happen
//     once: a retry finds it and skips the fold. A conflict (Into written
//     meanwhile) re-reads Into and folds again.
//  3. Clean up: on From's hash, delete the frozen record and From's alias
//     set (moved to Into's in step 2).
//
// Failure cases: a failure after step 1 leaves From an alias whose data
// is not yet in Into: decisions for either id miss From's history until
// the merge is run again (the API answers the failure with a 5xx; the
// client retries, which resumes at step 2). A failure after step 2 leaves
// From's frozen record in its hash, unread (Load answers the alias) until
// a retry deletes it. A second merge of the same ids finds "a" = Into, the
// guard and no record: it changes nothing. From's own aliases keep
// pointing to From (their hashes are in other slots): they resolve in two
// hops (the service follows up to featurestore.MaxAliasHops). Event ids
// applied under From (dedupe.go) are not carried over: finding them would
// scan the slot's keys. An event retried under From after the merge, within
// the dedupe window, is applied again to Into (the embedded store carries
// them).
var (
	intentScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v') or '0'
if v ~= ARGV[1] or redis.call('HEXISTS', KEYS[1], 'a') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(v) + 1), 'a', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`)
	// ARGV: expected version, encoded record ('' to leave it), guard
	// field, channel, message, then the ids to add to the alias set.
	// Answers 1 (applied), 0 (version moved), 2 (guard present: applied
	// before), 3 (Into is an alias).
	applyScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v') or '0'
if v ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[1], ARGV[3]) == 1 then return 2 end
if redis.call('HEXISTS', KEYS[1], 'a') == 1 then return 3 end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'r', ARGV[2]) end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(v) + 1), ARGV[3], '1')
for i = 6, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`)
	// ARGV: Into, channel, message.
	cleanupScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'a') ~= ARGV[1] then return 0 end
local v = redis.call('HGET', KEYS[1], 'v') or '0'
redis.call('HDEL', KEYS[1], 'r')
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(v) + 1))
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`)
)

func (s *Store) aliasSetKey(id string) string { return s.key(id) + ":aliases" }

func guardField(from string) string { return "m:" + from }

// aliased returns the error of a Mutate whose customers, as just read,
// include aliases: a *featurestore.AliasError when nothing of the call
// may have been written yet (wrote false), else ErrConflict.
func aliased(ps []*pending, wrote bool) error {
	var e *featurestore.AliasError
	for _, p := range ps {
		if p.alias == "" {
			continue
		}
		if e == nil {
			e = &featurestore.AliasError{Aliases: map[string]string{}}
		}
		e.Aliases[p.id] = p.alias
	}
	if e == nil {
		return nil
	}
	if wrote {
		return fmt.Errorf("%w: %v while the write was under way", ErrConflict, e)
	}
	return e
}

// side is one customer's hash as a merge reads it.
type side struct {
	version string
	rec     []byte // nil: no record
	alias   string
	guard   bool // Into: the guard of From is present
}

func (s *Store) readSide(ctx context.Context, pl redis.Cmdable, id, guard string) *redis.SliceCmd {
	fields := []string{"v", "r", "a"}
	if guard != "" {
		fields = append(fields, guard)
	}
	return pl.HMGet(ctx, s.key(id), fields...)
}

func parseSide(cmd *redis.SliceCmd) (side, error) {
	vals, err := cmd.Result()
	if err != nil {
		return side{}, err
	}
	sd := side{version: "0"}
	if v, ok := vals[0].(string); ok {
		sd.version = v
	}
	if r, ok := vals[1].(string); ok {
		sd.rec = []byte(r)
	}
	sd.alias, _ = vals[2].(string)
	sd.guard = len(vals) > 3 && vals[3] != nil
	return sd, nil
}

func decode(id string, b []byte) (*featurestore.Record, error) {
	if b == nil {
		return &featurestore.Record{}, nil
	}
	r, err := featurestore.UnmarshalRecord(b)
	if err != nil {
		return nil, fmt.Errorf("customer %q: %w", id, err)
	}
	return r, nil
}

// Merge merges m.From into m.Into (featurestore.Merge) by the protocol
// above, holding both customers' node-local locks (Locks).
func (s *Store) Merge(ctx context.Context, m featurestore.Merge) (featurestore.MergeResult, error) {
	stripes := s.locks.Stripes([]featurestore.Group{{CustomerID: m.Into}, {CustomerID: m.From}})
	s.locks.Lock(stripes)
	defer s.locks.Unlock(stripes)
	return s.ApplyMerge(ctx, m)
}

// ApplyMerge is the body of Merge, for a caller that holds the locks of
// both customers (the cache tier). When From is already an alias of Into
// and the merge complete it changes nothing (Merged false); when it is
// an alias of another customer the error wraps
// featurestore.ErrAliasConflict; when Into is an alias, it is a
// *featurestore.AliasError.
func (s *Store) ApplyMerge(ctx context.Context, m featurestore.Merge) (featurestore.MergeResult, error) {
	fail := func(err error) (featurestore.MergeResult, error) {
		return featurestore.MergeResult{}, fmt.Errorf("merge %q into %q: %w", m.From, m.Into, err)
	}
	guard := guardField(m.From)
	merged := false
	for attempt := 0; ; attempt++ {
		if attempt == s.attempts {
			return fail(ErrConflict)
		}
		if err := backoff(ctx, attempt); err != nil {
			return fail(err)
		}
		var fromCmd, intoCmd *redis.SliceCmd
		var aliasesCmd *redis.StringSliceCmd
		_, err := s.c.Pipelined(ctx, func(pl redis.Pipeliner) error {
			fromCmd = s.readSide(ctx, pl, m.From, "")
			intoCmd = s.readSide(ctx, pl, m.Into, guard)
			aliasesCmd = pl.SMembers(ctx, s.aliasSetKey(m.From))
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fail(err)
		}
		from, err := parseSide(fromCmd)
		if err != nil {
			return fail(err)
		}
		into, err := parseSide(intoCmd)
		if err != nil {
			return fail(err)
		}
		fromAliases, err := aliasesCmd.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fail(err)
		}
		switch {
		case into.alias != "":
			return featurestore.MergeResult{}, featurestore.NewAliasError(m.Into, into.alias)
		case from.alias != "" && from.alias != m.Into:
			return fail(fmt.Errorf("%w: %q was merged into %q", featurestore.ErrAliasConflict, m.From, from.alias))
		case from.alias == "":
			// Step 1: the intent.
			n, err := intentScript.Run(ctx, s.c, []string{s.key(m.From)}, from.version, m.Into, s.channel, s.node+"|"+m.From).Int()
			if err != nil {
				return fail(err)
			}
			if n == 0 {
				continue // From changed since the read
			}
			merged = true
		}
		// From is frozen: its record as read is the one to fold.
		fromRec, err := decode(m.From, from.rec)
		if err != nil {
			return fail(err)
		}
		rec, done, err := s.applyMerge(ctx, m, into, fromRec, append([]string{m.From}, fromAliases...))
		if err != nil {
			return fail(err)
		}
		merged = merged || done
		// Step 3: the frozen record and the moved alias set go.
		if from.rec != nil || len(fromAliases) > 0 {
			if err := cleanupScript.Run(ctx, s.c, []string{s.key(m.From), s.aliasSetKey(m.From)}, m.Into, s.channel, s.node+"|"+m.From).Err(); err != nil {
				return fail(err)
			}
		}
		return featurestore.MergeResult{Record: rec, Merged: merged}, nil
	}
}

// applyMerge is step 2: it folds from into Into's record, as read in
// into, under the guard, re-reading Into on a conflict. It returns Into's
// record after the step, and whether this call folded.
func (s *Store) applyMerge(ctx context.Context, m featurestore.Merge, into side, from *featurestore.Record, aliases []string) (*featurestore.Record, bool, error) {
	guard := guardField(m.From)
	for attempt := 0; ; attempt++ {
		if attempt == s.attempts {
			return nil, false, ErrConflict
		}
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return nil, false, err
			}
			var err error
			if into, err = parseSide(s.readSide(ctx, s.c, m.Into, guard)); err != nil {
				return nil, false, err
			}
		}
		if into.alias != "" {
			return nil, false, featurestore.NewAliasError(m.Into, into.alias)
		}
		rec, err := decode(m.Into, into.rec)
		if err != nil {
			return nil, false, err
		}
		if into.guard {
			return rec, false, nil // folded before
		}
		var enc []byte
		if m.Fold(rec, from) {
			enc = featurestore.AppendRecord(nil, rec)
		}
		args := []any{into.version, enc, guard, s.channel, s.node + "|" + m.Into}
		for _, a := range aliases {
			args = append(args, a)
		}
		n, err := applyScript.Run(ctx, s.c, []string{s.key(m.Into), s.aliasSetKey(m.Into)}, args...).Int()
		if err != nil {
			return nil, false, err
		}
		if n == 1 {
			return rec, true, nil
		}
		// 0: Into changed since the read; 2: another node folded; 3:
		// Into was merged away. The next read tells which.
	}
}

// backoff waits before attempt (none for the first), with jitter, so
// nodes racing on one customer do not collide again in lockstep.
func backoff(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return ctx.Err()
	}
	d := time.Duration(mrand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// Aliases returns the ids that resolve to the customer (merged into it,
// or into a customer merged into it), in no particular order.
func (s *Store) Aliases(ctx context.Context, customer string) ([]string, error) {
	return s.c.SMembers(ctx, s.aliasSetKey(customer)).Result()
}

// RemoveAliases deletes every alias that resolves to the customer (for
// the deletion of a customer: those ids stop resolving to it and become
// unknown), the customer's guards and alias set, and returns the ids. The
// aliases are in other slots: it deletes them first, then the set, so a
// call that fails part way is finished by the next.
func (s *Store) RemoveAliases(ctx context.Context, customer string) ([]string, error) {
	aliases, err := s.Aliases(ctx, customer)
	if err != nil || len(aliases) == 0 {
		return nil, err
	}
	_, err = s.c.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for _, a := range aliases {
			pl.HDel(ctx, s.key(a), "a")
			pl.Publish(ctx, s.channel, s.node+"|"+a)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("remove aliases of %q: %w", customer, err)
	}
	fields := make([]string, len(aliases))
	for i, a := range aliases {
		fields[i] = guardField(a)
	}
	_, err = s.c.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.HDel(ctx, s.key(customer), fields...)
		pl.Del(ctx, s.aliasSetKey(customer))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("remove aliases of %q: %w", customer, err)
	}
	return aliases, nil
}
