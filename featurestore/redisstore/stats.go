package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest/featurestore"
)

// Outcome statistics live in hashes beside the customer records, whose
// keys (`<prefix>{<id>}`) never start with "stats:":
//
//	<prefix>stats:learn     every all-time learning cell (Hour 0)
//	<prefix>stats:h:<hour>  the cells of one Unix hour, expiring
//	                        statsTTL after their last write
//
// A hash field is EncodeStatKey(key) + "\x1f" + metric, one field per
// non-zero metric of a cell, incremented with HINCRBY (HINCRBYFLOAT for
// the value), so concurrent adders on any number of nodes lose nothing.
const (
	statsLearn   = "stats:learn"
	statsHour    = "stats:h:"
	statsTTL     = 400 * 24 * time.Hour
	statsSep     = "\x1f"
	metricValue  = "val"
	metricValSq  = "vsq"
	numIntMetric = 8
)

// intMetrics name the integer fields of featurestore.Counts, in order:
// the per-customer ones of cohort cells (u customers, k converters, q
// Σ conversions²) came with issue 14, and an older node skips them.
var intMetrics = [numIntMetric]string{"d", "i", "c", "v", "x", "u", "k", "q"}

func intCounts(c *featurestore.Counts) [numIntMetric]*int64 {
	return [...]*int64{&c.Decisions, &c.Impressions, &c.Clicks, &c.Conversions, &c.Dismisses, &c.Customers, &c.Converters, &c.ConversionsSq}
}

// statsKey is the hash holding the cells of hour (0: the learning cells).
func (s *Store) statsKey(hour int64) string {
	if hour == 0 {
		return s.prefix + statsLearn
	}
	return s.prefix + statsHour + strconv.FormatInt(hour, 10)
}

// AddStats adds deltas to their cells in one pipeline of HINCRBY and
// HINCRBYFLOAT commands, and refreshes the expiry of every hourly hash it
// touches. Deltas of one cell are merged first; zero metrics write
// nothing. A delta failing featurestore.StatDelta.Check fails the call
// before anything is sent.
//
// The pipeline is not a transaction (on Redis Cluster its commands go to
// several masters): when it fails, some increments may have been applied,
// and a caller retrying the whole call counts those twice.
func (s *Store) AddStats(ctx context.Context, deltas []featurestore.StatDelta) error {
	cells := make(map[featurestore.StatKey]featurestore.Counts, len(deltas))
	order := make([]featurestore.StatKey, 0, len(deltas))
	for _, d := range deltas {
		if err := d.Check(); err != nil {
			return fmt.Errorf("redisstore: %w", err)
		}
		c, ok := cells[d.Key]
		if !ok {
			order = append(order, d.Key)
		}
		c.Add(d.Counts)
		cells[d.Key] = c
	}
	order = slices.DeleteFunc(order, func(k featurestore.StatKey) bool { return cells[k].IsZero() })
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(order) == 0 {
		return nil
	}
	hours := map[int64]bool{}
	_, err := s.c.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for _, k := range order {
			c := cells[k]
			key := s.statsKey(k.Hour)
			field := featurestore.EncodeStatKey(k) + statsSep
			for i, p := range intCounts(&c) {
				if *p != 0 {
					pl.HIncrBy(ctx, key, field+intMetrics[i], *p)
				}
			}
			if c.Value != 0 {
				pl.HIncrByFloat(ctx, key, field+metricValue, c.Value)
			}
			if c.ValueSq != 0 {
				pl.HIncrByFloat(ctx, key, field+metricValSq, c.ValueSq)
			}
			if k.Hour != 0 && !hours[k.Hour] {
				hours[k.Hour] = true
				pl.Expire(ctx, key, statsTTL)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: add stats: %w", err)
	}
	return nil
}

// LearnStats returns every all-time learning cell (Hour 0).
func (s *Store) LearnStats(ctx context.Context) (map[featurestore.StatKey]featurestore.Counts, error) {
	m, err := s.c.HGetAll(ctx, s.statsKey(0)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: learn stats: %w", err)
	}
	out := make(map[featurestore.StatKey]featurestore.Counts, len(m)/2)
	if err := parseStats(out, m, 0); err != nil {
		return nil, fmt.Errorf("redisstore: learn stats: %w", err)
	}
	return out, nil
}

// HourlyStats returns the hourly cells whose Hour is in [from, to]; none
// if from > to. It reads one hash per hour, in one pipeline, so a range
// longer than featurestore.MaxStatHours fails with
// featurestore.ErrStatRange.
func (s *Store) HourlyStats(ctx context.Context, from, to int64) (map[featurestore.StatKey]featurestore.Counts, error) {
	if err := featurestore.CheckHourRange(from, to); err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := map[featurestore.StatKey]featurestore.Counts{}
	if from > to {
		return out, nil
	}
	var hours []int64
	for h := from; ; h++ {
		if h != 0 { // hour 0 names the learning hash
			hours = append(hours, h)
		}
		if h == to {
			break
		}
	}
	if len(hours) == 0 {
		return out, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(hours))
	_, err := s.c.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, h := range hours {
			cmds[i] = pl.HGetAll(ctx, s.statsKey(h))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: hourly stats: %w", err)
	}
	for i, h := range hours {
		if err := parseStats(out, cmds[i].Val(), h); err != nil {
			return nil, fmt.Errorf("redisstore: hourly stats of hour %d: %w", h, err)
		}
	}
	return out, nil
}

// parseStats adds the cells of one hash, read by HGETALL, to out. Fields
// of a metric this version does not know are skipped, so an older node
// reads what a newer one wrote; a malformed field is an error.
func parseStats(out map[featurestore.StatKey]featurestore.Counts, m map[string]string, hour int64) error {
	for field, val := range m {
		i := strings.LastIndex(field, statsSep)
		if i < 0 {
			return fmt.Errorf("field %q: no metric", field)
		}
		k, ok := featurestore.DecodeStatKey(field[:i], hour)
		if !ok {
			return fmt.Errorf("field %q: malformed key", field)
		}
		c := out[k]
		switch metric := field[i+len(statsSep):]; metric {
		case metricValue, metricValSq:
			v, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return fmt.Errorf("field %q: %w", field, err)
			}
			if metric == metricValue {
				c.Value += v
			} else {
				c.ValueSq += v
			}
		default:
			j := slices.Index(intMetrics[:], metric)
			if j < 0 {
				continue
			}
			v, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return fmt.Errorf("field %q: %w", field, err)
			}
			*intCounts(&c)[j] += v
		}
		out[k] = c
	}
	return nil
}
