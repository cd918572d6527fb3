package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest/featurestore"
)

// Reach sketches: one hash per hour,
//
//	<prefix>stats:reach:<hour>   field EncodeReachKey → a featurestore.Sketch's registers
//
// expiring with the hourly statistics. A sketch is merged into its field
// by a script (register-wise maximum), atomic on the server, so nodes
// adding to the same cell lose no customer; a retried merge is harmless
// (the maximum is idempotent), unlike a retried HINCRBY. Every key holds
// one hour, so under Cluster each script touches one slot; a report reads
// the hours of its period in one pipeline, whatever their slots. Redis's
// own PFADD is not used: our sketch is the same bytes on both backends,
// and the decide path adds a hash to it in memory, never sending ids.
const statsReach = "stats:reach:"

// reachScript merges ARGV[2], a sketch, into field ARGV[1] of hash
// KEYS[1] and sets the hash to expire in ARGV[3] seconds. A stored value
// that is no sketch (another length, or a register above ARGV[4],
// featurestore.MaxSketchRank) is replaced by ARGV[2]: it returns 2 then,
// 1 otherwise (featurestore.ErrCorruptSketch).
var reachScript = redis.NewScript(`
local new = ARGV[2]
local maxr = tonumber(ARGV[4])
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local ret = 1
if cur then
  if #cur ~= #new then
    ret = 2
  else
    local out = {}
    for i = 1, #new, 256 do
      local a = {string.byte(cur, i, i + 255)}
      local b = {string.byte(new, i, i + 255)}
      for j = 1, #b do
        if a[j] > maxr then ret = 2 end
        if a[j] > b[j] then b[j] = a[j] end
      end
      out[#out + 1] = string.char(unpack(b))
    end
    if ret == 1 then new = table.concat(out) end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], new)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return ret
`)

func (s *Store) reachKey(hour int64) string {
	return s.prefix + statsReach + strconv.FormatInt(hour, 10)
}

// AddReach merges deltas into their cells, one script call per cell.
// Deltas of one cell are merged first.
func (s *Store) AddReach(ctx context.Context, deltas []featurestore.ReachDelta) error {
	merged := make(map[featurestore.ReachKey]*featurestore.Sketch, len(deltas))
	var order []featurestore.ReachKey
	for _, d := range deltas {
		if err := d.Check(); err != nil {
			return fmt.Errorf("redisstore: %w", err)
		}
		sk, ok := merged[d.Key]
		if !ok {
			sk = new(featurestore.Sketch)
			merged[d.Key] = sk
			order = append(order, d.Key)
		}
		sk.Merge(d.Sketch)
	}
	ttl := int64(statsTTL.Seconds())
	var corrupt []string
	for _, k := range order {
		if err := ctx.Err(); err != nil {
			return err
		}
		ret, err := reachScript.Run(ctx, s.c, []string{s.reachKey(k.Hour)}, featurestore.EncodeReachKey(k), merged[k][:], ttl, featurestore.MaxSketchRank).Int()
		if err != nil {
			return fmt.Errorf("redisstore: add reach: %w", err)
		}
		if ret == 2 {
			corrupt = append(corrupt, fmt.Sprintf("%s %q", s.reachKey(k.Hour), featurestore.EncodeReachKey(k)))
		}
	}
	if corrupt != nil {
		return fmt.Errorf("redisstore: add reach: replaced %d corrupt cells: %s: %w", len(corrupt), strings.Join(corrupt, ", "), featurestore.ErrCorruptSketch)
	}
	return nil
}

// Reach returns, per cell with Hour zeroed, the merge of the sketches of
// the hours in [from, to]; none if from > to.
func (s *Store) Reach(ctx context.Context, from, to int64) (map[featurestore.ReachKey]*featurestore.Sketch, error) {
	if err := featurestore.CheckHourRange(from, to); err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := map[featurestore.ReachKey]*featurestore.Sketch{}
	if from > to {
		return out, nil
	}
	cmds := make([]*redis.MapStringStringCmd, 0, to-from+1)
	_, err := s.c.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for h := from; ; h++ {
			cmds = append(cmds, pl.HGetAll(ctx, s.reachKey(h)))
			if h == to {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: reach: %w", err)
	}
	var corrupt []string
	for i, cmd := range cmds {
		for field, val := range cmd.Val() {
			k, ok := featurestore.DecodeReachKey(field, 0)
			if !ok {
				return nil, fmt.Errorf("redisstore: reach of hour %d: field %q: malformed key", from+int64(i), field)
			}
			sk, err := featurestore.ParseSketch([]byte(val))
			if errors.Is(err, featurestore.ErrCorruptSketch) {
				corrupt = append(corrupt, fmt.Sprintf("hour %d field %q", from+int64(i), field)) // skipped: see featurestore.ErrCorruptSketch
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("redisstore: reach of hour %d: field %q: %w", from+int64(i), field, err)
			}
			if cur := out[k]; cur != nil {
				cur.Merge(sk)
			} else {
				out[k] = sk
			}
		}
	}
	if corrupt != nil {
		return out, fmt.Errorf("redisstore: reach: skipped %d corrupt cells: %s: %w", len(corrupt), strings.Join(corrupt, ", "), featurestore.ErrCorruptSketch)
	}
	return out, nil
}
