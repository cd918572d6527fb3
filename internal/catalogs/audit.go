package catalogs

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Audit actions of catalog changes. Other components add their own
// (e.g. "key.create"), named <object>.<verb>.
const (
	ActionStartup  = "catalog.startup"  // the catalog file read at startup
	ActionUpload   = "catalog.upload"   // POST /v1/admin/catalog
	ActionReload   = "catalog.reload"   // the watched file changed
	ActionRollback = "catalog.rollback" // POST /v1/admin/catalog/rollback
)

// AuditEvent is one line of the audit log.
type AuditEvent struct {
	// Time is when it happened; zero means when it is recorded.
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	// Actor is who did it: an API key's name, "file" for the watcher,
	// "startup".
	Actor string `json:"actor"`
	// Version is the catalog version the action made active (or, when
	// Rejected, the hash of the catalog refused); Previous the one active
	// before.
	Version  string `json:"version,omitempty"`
	Previous string `json:"previous,omitempty"`
	// Rejected marks a change refused, for Errors problems in the catalog
	// or for Reason.
	Rejected bool   `json:"rejected,omitempty"`
	Errors   int    `json:"errors,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Subject is what a non-catalog action is about (the API key created
	// or revoked).
	Subject string `json:"subject,omitempty"`
}

// Audit appends events to a log as JSON lines, one write per event. It is
// safe for concurrent use; a nil *Audit records nothing.
type Audit struct {
	mu  sync.Mutex
	w   io.Writer
	f   *os.File // w when it is a file: synced after every event, closed by Close
	now func() time.Time
}

// OpenAudit opens the audit log at path for appending, creating it (and
// its directory) if missing. Every event is synced to disk before Record
// returns: changes are rare, and an audit log that loses them is no log.
func OpenAudit(path string) (*Audit, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &Audit{w: f, f: f, now: time.Now}, nil
}

// NewAudit returns an Audit that writes to w (which it does not close).
func NewAudit(w io.Writer) *Audit { return &Audit{w: w, now: time.Now} }

// Record appends e to the log.
func (a *Audit) Record(e AuditEvent) error {
	if a == nil {
		return nil
	}
	if e.Time.IsZero() {
		e.Time = a.now()
	}
	e.Time = e.Time.UTC()
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.w.Write(line); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if a.f != nil {
		if err := a.f.Sync(); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	return nil
}

// Close closes the log file opened by OpenAudit.
func (a *Audit) Close() error {
	if a == nil || a.f == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f.Close()
}
