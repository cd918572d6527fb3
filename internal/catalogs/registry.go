package catalogs

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nextbest/nextbest"
	"github.com/nextbest/nextbest/rules"
)

// Version is a catalog version the registry keeps (nextbest.CatalogVersion:
// the service's transports name versions without depending on the
// registry).
type Version = nextbest.CatalogVersion

// VersionOf returns the version of a catalog source: the first 12 hex
// digits of its SHA-256.
func VersionOf(src []byte) string { return nextbest.CatalogVersionOf(src) }

// validID reports whether id has the form of a version, so that it can
// name a file.
func validID(id string) bool {
	if len(id) != 12 {
		return false
	}
	for i := range len(id) {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ErrUnknownVersion is returned by Rollback for a version the registry
// does not keep.
var ErrUnknownVersion = nextbest.ErrUnknownCatalogVersion

// UploadName is the file name errors carry for a catalog given to Load
// or Validate.
const UploadName = "upload"

// Options configures a Registry.
type Options struct {
	// Dir keeps the versions, one <version>.yaml file each, and
	// index.json: which are kept, which is in force. It is created if
	// missing, and locked until Close: one registry writes it at a time.
	// Default: "", versions are kept in memory only.
	Dir string
	// MaxVersions bounds the versions kept; the oldest go first, never the
	// one in force. Default: 50.
	MaxVersions int
	// Catalog is where the catalog in force is published; readers load it
	// once per request. Default: a new pointer (see Registry.Catalog).
	Catalog *atomic.Pointer[rules.Catalog]
	// Audit records every change and every rejected one. Default: nil,
	// nothing is recorded.
	Audit *Audit
	// Logger receives what cannot be returned: audit failures, a version
	// in force at the last stop that no longer loads. Default: discard.
	Logger *slog.Logger
	// Now is the clock of version times. Default: time.Now.
	Now func() time.Time
	// Debounce is how long Watch waits for the file to settle after a
	// change before it reads it. Default: 100ms.
	Debounce time.Duration
	// Budget is what every catalog put in force may cost (budget.go).
	// Default: the zero Budget, its defaults.
	Budget Budget
}

// Option defaults.
const (
	DefaultMaxVersions = 50
	DefaultDebounce    = 100 * time.Millisecond
)

// Registry keeps the catalog in force and the versions it can return to.
type Registry struct {
	catalog  *atomic.Pointer[rules.Catalog]
	dir      string
	max      int
	audit    *Audit
	log      *slog.Logger
	now      func() time.Time
	debounce time.Duration
	budget   Budget
	timed    atomic.Pointer[timedCatalog] // DecideTime's last measure
	unlock   func() error                 // releases Dir
	observe  atomic.Pointer[func(AuditEvent)]

	mu       sync.Mutex // serialises changes; guards the fields below
	versions []entry    // newest first
	active   string     // the version in force; "" before the first
	fileHash string     // version of the catalog file last accepted (persisted)
	fileSeen string     // version of the catalog file last read, accepted or not
	fileErr  error      // why the file's content last read is not in force; nil if it is
	closed   bool
}

type entry struct {
	Version
	src []byte // the source, kept in memory only when there is no Dir
}

// Open validates opts and returns a registry. With a Dir holding versions
// from an earlier run, the one in force then is compiled and published
// again; if it no longer compiles (the rules changed since), the error is
// logged and nothing is published: Start then loads the catalog file.
func Open(opts Options) (*Registry, error) {
	var errs []error
	if opts.MaxVersions < 0 {
		errs = append(errs, fmt.Errorf("MaxVersions is %d, must not be negative", opts.MaxVersions))
	}
	if opts.Debounce < 0 {
		errs = append(errs, fmt.Errorf("the Debounce of Watch is %v, must not be negative", opts.Debounce))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("catalogs: %w", err)
	}
	r := &Registry{
		catalog:  opts.Catalog,
		dir:      opts.Dir,
		max:      opts.MaxVersions,
		audit:    opts.Audit,
		log:      opts.Logger,
		now:      opts.Now,
		debounce: opts.Debounce,
		budget:   opts.Budget,
	}
	if r.catalog == nil {
		r.catalog = new(atomic.Pointer[rules.Catalog])
	}
	if r.max == 0 {
		r.max = DefaultMaxVersions
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.debounce == 0 {
		r.debounce = DefaultDebounce
	}
	if r.dir == "" {
		return r, nil
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, fmt.Errorf("catalogs: %w", err)
	}
	unlock, err := lockDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("catalogs: %w", err)
	}
	idx, err := readIndex(r.dir)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("catalogs: %w", err)
	}
	r.unlock = unlock
	for _, v := range idx.Versions {
		r.versions = append(r.versions, entry{Version: v})
	}
	r.fileHash, r.fileSeen = idx.File, idx.File
	r.removeStrays()
	if idx.Active != "" {
		e := r.find(idx.Active)
		var cat *rules.Catalog
		if e == nil {
			err = fmt.Errorf("%w %q", ErrUnknownVersion, idx.Active)
		} else {
			cat, err = r.compile(e)
		}
		if err != nil {
			r.log.Error("the catalog version in force at the last stop does not load; the catalog file will be", "version", idx.Active, "err", err)
		} else {
			r.active = idx.Active
			r.publish(cat, idx.Active)
		}
	}
	return r, nil
}

// ErrClosed is returned for a change asked of a closed registry.
var ErrClosed = errors.New("catalog registry is closed")

// Close releases Dir for another registry. The catalog in force stays
// published; changes asked after return ErrClosed.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if r.unlock == nil {
		return nil
	}
	return r.unlock()
}

// Catalog returns the pointer the catalog in force is published to.
func (r *Registry) Catalog() *atomic.Pointer[rules.Catalog] { return r.catalog }

// Validate compiles src as Load would, within the budget, and reports its
// rules.Errors (or nil) without changing anything.
func (r *Registry) Validate(src []byte) error {
	_, _, err := r.budget.Compile(UploadName, src, r.now())
	return err
}

// Load compiles src and, if it is good, puts it in force as a version
// accepted from actor. A catalog with problems returns rules.Errors,
// every one of them, and changes nothing. Loading the catalog in force
// again changes nothing and returns its version as it was accepted.
func (r *Registry) Load(src []byte, actor string) (Version, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, _, err := r.change(src, UploadName, actor, ActionUpload, false)
	return v, err
}

// Start puts the catalog file at path in force as the server starts,
// unless a version restored by Open is in force and the file is
// unchanged since a process on the same Dir last read it: then that
// version, which may have been uploaded or rolled back to since, stays,
// and Start returns it.
//
// A file with problems does not stop a server that has a good version:
// the version restored by Open, the last one in force, stays and Start
// returns it, as the running server kept it when the same file was
// rejected; FileRejected then returns the file's problems until a good
// file is loaded. Without a version to fall back on (the first start, or
// one that no longer compiles), a file with problems returns its
// rules.Errors. A file that cannot be read is always an error.
func (r *Registry) Start(path string) (Version, error) {
	v, _, err := r.loadFile(path, "startup", ActionStartup)
	var read *os.PathError
	if err == nil || errors.As(err, &read) {
		return v, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.find(r.active); e != nil {
		return e.Version, nil
	}
	return Version{}, err
}

// FileRejected returns why the content of the catalog file last read is
// not in force (its rules.Errors, or why it could not be kept), while
// another version serves in its place; nil when the file's content is in
// force, or was never rejected. A version uploaded or rolled back to does
// not clear it: the file on disk is still the one with problems.
func (r *Registry) FileRejected() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fileErr
}

// loadFile puts the catalog file at path in force, unless its content is
// what was last read from the file: changed reports whether it did.
func (r *Registry) loadFile(path, actor, action string) (v Version, changed bool, err error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return Version{}, false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id := VersionOf(src)
	if id == r.fileSeen && r.active != "" {
		return r.find(r.active).Version, false, nil
	}
	r.fileSeen = id
	v, changed, err = r.change(src, path, actor, action, true)
	r.fileErr = err
	return v, changed, err
}

// change puts src in force; r.mu is held. fromFile records it as the
// catalog file's content.
func (r *Registry) change(src []byte, name, actor, action string, fromFile bool) (Version, bool, error) {
	if r.closed {
		return Version{}, false, ErrClosed
	}
	id := VersionOf(src)
	prev := r.active
	if id == prev {
		if fromFile && r.fileHash != id {
			r.fileHash = id
			if err := r.writeIndex(); err != nil {
				return Version{}, false, err
			}
		}
		return r.find(id).Version, false, nil
	}
	cat, _, err := r.budget.Compile(name, src, r.now())
	if err != nil {
		r.record(rejection(action, actor, id, prev, err))
		return Version{}, false, err
	}
	v := Version{ID: id, Time: r.now().UTC(), Actor: actor, Previous: prev}
	e := entry{Version: v}
	if r.dir == "" {
		e.src = src
	}
	versions := make([]entry, 0, len(r.versions)+1)
	versions = append(versions, e)
	for _, old := range r.versions {
		if old.ID != id {
			versions = append(versions, old)
		}
	}
	versions, dropped := prune(versions, r.max, id)

	old := struct {
		versions []entry
		active   string
		fileHash string
	}{r.versions, r.active, r.fileHash}
	r.versions, r.active = versions, id
	if fromFile {
		r.fileHash = id
	}
	err = r.writeSource(id, src)
	if err == nil {
		err = r.writeIndex()
	}
	if err != nil {
		r.versions, r.active, r.fileHash = old.versions, old.active, old.fileHash
		err = fmt.Errorf("catalog version %s: %w", id, err)
		r.record(AuditEvent{Action: action, Actor: actor, Version: id, Previous: prev, Rejected: true, Reason: err.Error()})
		return Version{}, false, err
	}
	r.publish(cat, id)
	r.removeSources(dropped)
	r.record(AuditEvent{Action: action, Actor: actor, Version: id, Previous: prev})
	return v, true, nil
}

// Rollback puts version back in force, on behalf of actor. A version the
// registry does not keep returns ErrUnknownVersion. The versions keep
// their order: a rollback adds none.
func (r *Registry) Rollback(version, actor string) (Version, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return Version{}, ErrClosed
	}
	e := r.find(version)
	if e == nil {
		return Version{}, fmt.Errorf("%w %q", ErrUnknownVersion, version)
	}
	prev := r.active
	if version == prev {
		return e.Version, nil
	}
	cat, err := r.compile(e)
	if err != nil {
		r.record(rejection(ActionRollback, actor, version, prev, err))
		return Version{}, fmt.Errorf("catalog version %s: %w", version, err)
	}
	r.active = version
	if err := r.writeIndex(); err != nil {
		r.active = prev
		err = fmt.Errorf("catalog version %s: %w", version, err)
		r.record(AuditEvent{Action: ActionRollback, Actor: actor, Version: version, Previous: prev, Rejected: true, Reason: err.Error()})
		return Version{}, err
	}
	r.publish(cat, version)
	r.record(AuditEvent{Action: ActionRollback, Actor: actor, Version: version, Previous: prev})
	return e.Version, nil
}

// Versions returns the versions kept, newest first.
func (r *Registry) Versions() []Version {
	r.mu.Lock()
	defer r.mu.Unlock()
	vs := make([]Version, len(r.versions))
	for i, e := range r.versions {
		vs[i] = e.Version
	}
	return vs
}

// Active returns the version in force; its ID is "" before the first.
func (r *Registry) Active() Version {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.find(r.active); e != nil {
		return e.Version
	}
	return Version{}
}

// find returns the entry of version id, or nil; r.mu is held.
func (r *Registry) find(id string) *entry {
	for i := range r.versions {
		if r.versions[i].ID == id {
			return &r.versions[i]
		}
	}
	return nil
}

// compile compiles a version kept.
func (r *Registry) compile(e *entry) (*rules.Catalog, error) {
	src, name := e.src, "version "+e.ID
	if src == nil {
		name = r.sourcePath(e.ID)
		var err error
		if src, err = os.ReadFile(name); err != nil {
			return nil, err
		}
	}
	cat, _, err := r.budget.Compile(name, src, r.now())
	return cat, err
}

// publish puts cat in force as version id. A catalog is immutable once
// published: its Version is set before.
func (r *Registry) publish(cat *rules.Catalog, id string) {
	cat.Version = id
	r.catalog.Store(cat)
}

// Observe makes fn see every change and every rejected one (for metrics),
// after the audit log does. fn must not call the registry.
func (r *Registry) Observe(fn func(AuditEvent)) { r.observe.Store(&fn) }

func (r *Registry) record(e AuditEvent) {
	if fn := r.observe.Load(); fn != nil {
		defer (*fn)(e)
	}
	if err := r.audit.Record(e); err != nil {
		r.log.Error("audit", "action", e.Action, "version", e.Version, "err", err)
	}
}

// rejection is the audit event of a catalog refused for err.
func rejection(action, actor, version, prev string, err error) AuditEvent {
	e := AuditEvent{Action: action, Actor: actor, Version: version, Previous: prev, Rejected: true}
	var errs rules.Errors
	if errors.As(err, &errs) {
		e.Errors = len(errs)
	} else {
		e.Errors = 1
		e.Reason = err.Error()
	}
	return e
}

// prune drops the oldest of vs beyond max, never keep.
func prune(vs []entry, max int, keep string) (kept []entry, dropped []string) {
	excess := len(vs) - max
	if excess <= 0 {
		return vs, nil
	}
	drop := make(map[int]bool, excess)
	for i := len(vs) - 1; i >= 0 && len(drop) < excess; i-- {
		if vs[i].ID != keep {
			drop[i] = true
		}
	}
	kept = make([]entry, 0, len(vs)-len(drop))
	for i, e := range vs {
		if drop[i] {
			dropped = append(dropped, e.ID)
		} else {
			kept = append(kept, e)
		}
	}
	return kept, dropped
}
