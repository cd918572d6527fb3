package main

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// routeStdLog sends what is printed through the standard library's log
// package to logger, until restore is called. Libraries print their rare
// messages there (VictoriaMetrics/metrics "ERROR: metrics: ...", pebble
// without a logger of its own); written as is, such a plain-text line
// breaks a JSON log.
func routeStdLog(logger *slog.Logger) (restore func()) {
	w, flags, prefix := log.Writer(), log.Flags(), log.Prefix()
	log.SetOutput(stdLogWriter{logger})
	log.SetFlags(0) // slog stamps the time
	log.SetPrefix("")
	return func() {
		log.SetOutput(w)
		log.SetFlags(flags)
		log.SetPrefix(prefix)
	}
}

// stdLogWriter logs each line the log package writes as one slog record,
// at the level its "ERROR"/"WARN"/"INFO" prefix names (warn when none).
type stdLogWriter struct{ log *slog.Logger }

func (w stdLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelWarn
	switch {
	case strings.HasPrefix(msg, "ERROR"):
		level = slog.LevelError
	case strings.HasPrefix(msg, "INFO"):
		level = slog.LevelInfo
	}
	w.log.Log(context.Background(), level, msg, "component", "log")
	return len(p), nil
}
