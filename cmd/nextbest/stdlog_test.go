package main

import (
	"bytes"
	"encoding/json"
	"log"
	"log/slog"
	"strings"
	"testing"
)

// TestRouteStdLog: what libraries print through the log package becomes a
// record of the server's logger, at the level the line names, and the log
// package is given back as it was.
func TestRouteStdLog(t *testing.T) {
	var out bytes.Buffer
	before := log.Writer()
	restore := routeStdLog(slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	log.Printf("ERROR: metrics: cannot determine the limit on open file descriptors: %s", "no such file")
	log.Print("INFO: metrics: disable exposing PSI metrics")
	log.Print("something else\n")
	restore()
	if log.Writer() != before {
		t.Error("the log package's output was not restored")
	}

	want := []struct{ level, msg string }{
		{"ERROR", "ERROR: metrics: cannot determine the limit on open file descriptors: no such file"},
		{"INFO", "INFO: metrics: disable exposing PSI metrics"},
		{"WARN", "something else"},
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, line := range lines {
		var rec struct{ Level, Msg, Component string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("line %d is not JSON: %v: %s", i+1, err, line)
			continue
		}
		if rec.Level != want[i].level || rec.Msg != want[i].msg || rec.Component != "log" {
			t.Errorf("line %d: got level %s msg %q component %q, want %s %q log", i+1, rec.Level, rec.Msg, rec.Component, want[i].level, want[i].msg)
		}
	}
}
