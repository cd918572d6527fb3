package catalogs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/nextbest/nextbest/rules"
)

// Watch reloads the catalog file at path whenever it changes, as "file",
// until ctx ends; then it returns nil. It watches the file's directory,
// not the file, so that an editor's save by rename, or a Kubernetes
// ConfigMap's swap of its ..data link, is seen; a burst of events is
// read once, Debounce after the last. Content already read from the
// file (accepted or rejected) is not loaded again, so a touch, or a save
// that changes nothing, changes nothing, and a catalog uploaded or rolled
// back to since stays in force. A rejected file is logged with every
// error and audited; the catalog in force keeps serving. The error
// returned is one of setting the watch up.
func (r *Registry) Watch(ctx context.Context, path string, log *slog.Logger) error {
	if log == nil {
		log = r.log
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch catalog: %w", err)
	}
	defer w.Close()
	dir, name := filepath.Dir(path), filepath.Base(path)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch catalog %s: %w", path, err)
	}
	// A change between the startup load and the watch is not missed.
	r.reload(path, log)

	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if base := filepath.Base(ev.Name); base == name || strings.HasPrefix(base, "..") {
				settle.Reset(r.debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Warn("watch catalog", "file", path, "err", err)
		case <-settle.C:
			r.reload(path, log)
		}
	}
}

// reload loads the catalog file on the watcher's behalf and logs what
// came of it.
func (r *Registry) reload(path string, log *slog.Logger) {
	v, changed, err := r.loadFile(path, "file", ActionReload)
	var errs rules.Errors
	switch {
	case errors.As(err, &errs):
		log.Error("catalog file rejected; the catalog in force keeps serving", "file", path, "errors", len(errs), "in_force", r.Active().ID, "err", err)
	case err != nil:
		// Mid-save, the file may be missing for a moment: the next event
		// brings it back.
		log.Warn("catalog file not read", "file", path, "err", err)
	case changed:
		log.Info("catalog reloaded", "file", path, "version", v.ID, "previous", v.Previous)
	}
}
