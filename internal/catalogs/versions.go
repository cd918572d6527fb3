package catalogs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nextbest/nextbest/rules"
)

// The versions kept, for replay (issue 14): a logged decision names the
// version that made it, and replay decides it again on that version.
// A version is kept as long as it is one of the last MaxVersions
// accepted (--catalog-history); past that its source is removed and a
// decision it made can no longer be replayed: ErrUnknownVersion, never
// another version's answer.

// ReadVersion returns the source of version id kept in dir, a
// registry's Dir, without opening the registry: for a stopped node's
// data, or beside a running one (sources are written whole before the
// index names them and never rewritten). A version dir does not keep
// (never accepted there, or pruned) returns an error wrapping
// ErrUnknownVersion; a source that is not the version's (edited by
// hand) an error saying so.
func ReadVersion(dir, id string) ([]byte, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w %q: not a catalog version", ErrUnknownVersion, id)
	}
	path := filepath.Join(dir, id+".yaml")
	src, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w %s: %s does not keep it (a node keeps its last --catalog-history versions)", ErrUnknownVersion, id, dir)
	}
	if err != nil {
		return nil, err
	}
	if v := VersionOf(src); v != id {
		return nil, fmt.Errorf("%s: its content is version %s, not %s: the file was changed", path, v, id)
	}
	return src, nil
}

// CompiledVersion returns version id, kept, compiled under the
// registry's static limits: the catalog in force itself when it is id.
// A version not kept returns an error wrapping ErrUnknownVersion.
func (r *Registry) CompiledVersion(id string) (*rules.Catalog, error) {
	if cat := r.catalog.Load(); cat != nil && cat.Version == id {
		return cat, nil
	}
	r.mu.Lock()
	e := r.find(id)
	var src []byte
	if e != nil {
		src = e.src
	}
	r.mu.Unlock()
	if e == nil {
		return nil, fmt.Errorf("%w %s: not one of the last versions kept (--catalog-history)", ErrUnknownVersion, id)
	}
	name := "version " + id
	if src == nil {
		var err error
		if src, err = ReadVersion(r.dir, id); err != nil {
			return nil, err
		}
		name = r.sourcePath(id)
	}
	cat, err := rules.Compile(name, src, r.budget.Rules)
	if err != nil {
		return nil, fmt.Errorf("version %s no longer compiles: %w", id, err)
	}
	cat.Version = id
	return cat, nil
}

// Compile compiles src under the registry's static limits, as version
// VersionOf(src), without putting it in force or keeping it: a catalog
// to compare with (replay). One with problems returns rules.Errors.
func (r *Registry) Compile(src []byte) (*rules.Catalog, error) {
	cat, err := rules.Compile(UploadName, src, r.budget.Rules)
	if err != nil {
		return nil, err
	}
	cat.Version = VersionOf(src)
	return cat, nil
}
