package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	actor "github.com/oklog/run"
	"github.com/redis/go-redis/v9"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/internal/decisionlog"
	"github.com/nextbest/nextbest/internal/decisionlog/redisstream"
)

// decisionLogFlags configure the decision log (issue 14; docs/operations.md).
type decisionLogFlags struct {
	DecisionLogSample            float64   `default:"0" env:"NEXTBEST_DECISION_LOG_SAMPLE" help:"Share of decisions written to the decision log under <data>/decisions/, 0 to 1, chosen by decision id (0: none, the log is off; 1: all). See docs/operations.md."`
	DecisionLogRetention         retention `default:"7d" env:"NEXTBEST_DECISION_LOG_RETENTION" help:"How much of the decision log is kept: an age (7d, 36h) or a total size (2GiB); older or excess segments are removed."`
	DecisionLogSegment           byteSize  `default:"32MiB" env:"NEXTBEST_DECISION_LOG_SEGMENT" help:"Size of one decision log segment file, past which a new one is started."`
	DecisionLogBuffer            int       `default:"4096" env:"NEXTBEST_DECISION_LOG_BUFFER" help:"Decisions waiting to be written to the log; when full, decisions are not logged (counted in nextbest_decision_log_dropped_total), never held up."`
	DecisionLogPropensitySamples int       `default:"32" env:"NEXTBEST_DECISION_LOG_PROPENSITY_SAMPLES" help:"Re-draws of a logged Thompson-sampling decision that estimate each offer's propensity (error about sqrt(p(1-p)/K)), 1 to 1024."`
	DecisionLogStreamMaxLen      int64     `name:"decision-log-stream-maxlen" default:"1000000" env:"NEXTBEST_DECISION_LOG_STREAM_MAXLEN" help:"With --redis, logged decisions also go to a Redis Stream per node (XADD MAXLEN ~ this many: about the last N decisions, ~1 KiB each); 0: no stream."`
	DecisionLogStreamKey         string    `env:"NEXTBEST_DECISION_LOG_STREAM_KEY" help:"Key of this node's decision log stream (default: <redis-prefix>decisions:<hostname>, with :<port> when --addr names one)."`
}

// decisionStreamTo is where the decision log's stream goes: the Redis
// store's client (nil without Redis), its key prefix, and the node's
// listen address, which names the stream by default.
type decisionStreamTo struct {
	client redis.UniversalClient
	prefix string
	addr   string
}

// streamKey is the default key of a node's decision log stream: the
// prefix, "decisions:", the host name, and the port when addr names one
// (two nodes on one host then have a stream each).
func streamKey(prefix, hostname, addr string) string {
	key := prefix + "decisions:" + hostname
	if _, port, err := net.SplitHostPort(addr); err == nil && port != "" && port != "0" {
		key += ":" + port
	}
	return key
}

// retention is --decision-log-retention: an age or a size.
type retention struct {
	age   time.Duration
	bytes int64
}

func (r *retention) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n > 0 && n <= 3650 {
			*r = retention{age: time.Duration(n) * 24 * time.Hour}
			return nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return fmt.Errorf("%q: a retention must be positive", text)
		}
		*r = retention{age: d}
		return nil
	}
	var b byteSize
	if err := b.UnmarshalText(text); err != nil || b <= 0 {
		return fmt.Errorf("%q is not an age (7d, 36h) or a size (2GiB)", text)
	}
	*r = retention{bytes: int64(b)}
	return nil
}

func (r retention) String() string {
	if r.bytes > 0 {
		return strconv.FormatInt(r.bytes, 10)
	}
	return r.age.String()
}

// open opens the decision log of dataDir when f samples any decision,
// registers its metrics in set and sets the service's options in opts;
// it returns what adds the log's writer to the actors (after the
// server's, so it drains what the last decisions queued), nil when off.
func (f *decisionLogFlags) open(dataDir string, log *slog.Logger, set *metrics.Set, opts *nextbest.Options, to decisionStreamTo) (func(*actor.Group), error) {
	if f.DecisionLogSample < 0 || f.DecisionLogSample > 1 {
		return nil, usagef("--decision-log-sample %v: must be from 0 to 1", f.DecisionLogSample)
	}
	if f.DecisionLogPropensitySamples < 1 || f.DecisionLogPropensitySamples > 1024 {
		return nil, usagef("--decision-log-propensity-samples %d: must be from 1 to 1024", f.DecisionLogPropensitySamples)
	}
	if f.DecisionLogBuffer < 1 {
		return nil, usagef("--decision-log-buffer %d: must be at least 1", f.DecisionLogBuffer)
	}
	if f.DecisionLogStreamMaxLen < 0 {
		return nil, usagef("--decision-log-stream-maxlen %d: must not be negative", f.DecisionLogStreamMaxLen)
	}
	if f.DecisionLogSample == 0 {
		return nil, nil
	}
	var stream *redisstream.Stream
	if to.client != nil && f.DecisionLogStreamMaxLen > 0 {
		key := f.DecisionLogStreamKey
		if key == "" {
			host, err := os.Hostname()
			if err != nil {
				return nil, fmt.Errorf("--decision-log-stream-key: no host name to name the stream by (%w): set the key", err)
			}
			key = streamKey(to.prefix, host, to.addr)
		}
		var err error
		stream, err = redisstream.New(redisstream.Options{Client: to.client, Key: key, MaxLen: f.DecisionLogStreamMaxLen, Logger: log})
		if err != nil {
			return nil, err
		}
		set.RegisterMetricsWriter(func(w io.Writer) {
			metrics.WriteCounterUint64(w, "nextbest_decision_log_stream_sent_total", stream.Sent())
			metrics.WriteCounterUint64(w, "nextbest_decision_log_stream_failed_total", stream.Failed())
			metrics.WriteCounterUint64(w, "nextbest_decision_log_stream_dropped_total", stream.Dropped())
		})
	}
	var sink decisionlog.Sink
	if stream != nil {
		sink = stream
	}
	dl, err := decisionlog.Open(decisionlog.Options{
		Sink:         sink,
		Dir:          filepath.Join(dataDir, "decisions"),
		SegmentBytes: int64(f.DecisionLogSegment),
		RetainAge:    f.DecisionLogRetention.age,
		RetainBytes:  f.DecisionLogRetention.bytes,
		Buffer:       f.DecisionLogBuffer,
		Logger:       log,
	})
	if err != nil {
		return nil, fmt.Errorf("--decision-log-sample: %w", err)
	}
	set.RegisterMetricsWriter(func(w io.Writer) {
		metrics.WriteCounterUint64(w, "nextbest_decision_log_dropped_total", dl.Dropped())
		metrics.WriteCounterUint64(w, "nextbest_decision_log_written_total", dl.Written())
	})
	opts.DecisionLog, opts.DecisionLogSample, opts.PropensitySamples = dl, f.DecisionLogSample, f.DecisionLogPropensitySamples
	log.Info("decision log on", "dir", filepath.Join(dataDir, "decisions"), "sample", f.DecisionLogSample, "retention", f.DecisionLogRetention.String())
	if stream != nil {
		log.Info("decision log stream on", "key", stream.Key(), "maxlen", f.DecisionLogStreamMaxLen)
	}
	return func(g *actor.Group) {
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		g.Add(func() error {
			defer close(done)
			if err := dl.Run(ctx); err != nil {
				log.Error("decision log", "err", err)
			}
			return ctx.Err()
		}, func(error) {
			// Interrupts run in order: the server's has stopped
			// taking decisions, and the writer drains the queue.
			stop()
			<-done
		})
		if stream == nil {
			return
		}
		sctx, sstop := context.WithCancel(context.Background())
		sdone := make(chan struct{})
		g.Add(func() error {
			defer close(sdone)
			_ = stream.Run(sctx)
			return sctx.Err()
		}, func(error) {
			// After the log's interrupt: its writer has handed the
			// stream its last batch, which Run sends before it returns.
			sstop()
			<-sdone
		})
	}, nil
}
