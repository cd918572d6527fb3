package catalogs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// indexName is the file in Dir that lists the versions kept.
const indexName = "index.json"

// index is the persisted state of a registry. Files are replaced whole
// (written beside, synced, renamed), so a crash leaves the old index or
// the new one: a version's source is written before the index names it,
// and removed only after the index stopped naming it.
type index struct {
	Active   string    `json:"active"`
	File     string    `json:"file,omitempty"` // version of the catalog file last accepted
	Versions []Version `json:"versions"`       // newest first
}

func readIndex(dir string) (index, error) {
	var idx index
	b, err := os.ReadFile(filepath.Join(dir, indexName))
	if errors.Is(err, fs.ErrNotExist) {
		return idx, nil
	}
	if err != nil {
		return idx, err
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return idx, fmt.Errorf("%s: %w", filepath.Join(dir, indexName), err)
	}
	// The ids name files: keep only well-formed ones, once each.
	seen := make(map[string]bool, len(idx.Versions))
	vs := idx.Versions[:0]
	for _, v := range idx.Versions {
		if validID(v.ID) && !seen[v.ID] {
			seen[v.ID] = true
			vs = append(vs, v)
		}
	}
	idx.Versions = vs
	if !seen[idx.Active] {
		idx.Active = ""
	}
	if !validID(idx.File) {
		idx.File = ""
	}
	return idx, nil
}

// writeIndex persists the registry's state; r.mu is held.
func (r *Registry) writeIndex() error {
	if r.dir == "" {
		return nil
	}
	idx := index{Active: r.active, File: r.fileHash, Versions: make([]Version, len(r.versions))}
	for i, e := range r.versions {
		idx.Versions[i] = e.Version
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(r.dir, indexName), append(b, '\n'))
}

func (r *Registry) sourcePath(id string) string { return filepath.Join(r.dir, id+".yaml") }

// writeSource keeps the source of version id, unless it is kept already.
func (r *Registry) writeSource(id string, src []byte) error {
	if r.dir == "" {
		return nil
	}
	path := r.sourcePath(id)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	return writeFile(path, src)
}

// removeSources removes the sources of versions no longer kept. A
// failure leaves a stray file, removed at the next Open.
func (r *Registry) removeSources(ids []string) {
	if r.dir == "" {
		return
	}
	for _, id := range ids {
		if err := os.Remove(r.sourcePath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn("remove catalog version", "version", id, "err", err)
		}
	}
}

// removeStrays removes what a crash may have left in Dir: temporary files
// and the sources of versions the index does not name.
func (r *Registry) removeStrays() {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		r.log.Warn("catalog versions", "err", err)
		return
	}
	for _, de := range entries {
		name := de.Name()
		id, isSource := strings.CutSuffix(name, ".yaml")
		stray := strings.HasPrefix(name, tmpPrefix) || (isSource && validID(id) && r.find(id) == nil)
		if stray {
			if err := os.Remove(filepath.Join(r.dir, name)); err != nil {
				r.log.Warn("remove stray catalog file", "file", name, "err", err)
			}
		}
	}
}

const tmpPrefix = ".tmp-"

// writeFile replaces path with data atomically and durably: written
// beside it, synced, renamed over it, and the directory synced.
func writeFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
