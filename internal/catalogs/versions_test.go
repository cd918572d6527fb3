package catalogs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/rules"
)

// TestVersionsKeptForReplay: a version kept is read back from the
// directory of a closed registry and compiled by a running one; one
// pruned past MaxVersions, or never accepted, is ErrUnknownVersion, and a
// source changed by hand is not taken for its version.
func TestVersionsKeptForReplay(t *testing.T) {
	for _, dir := range []string{t.TempDir(), ""} {
		r := open(t, Options{Dir: dir, MaxVersions: 2})
		v1 := mustLoad(t, r, catalog("one"), "a")
		v2 := mustLoad(t, r, catalog("two"), "a")
		v3 := mustLoad(t, r, catalog("three"), "a") // v1 is pruned
		for _, tt := range []struct {
			id, headline string
		}{{v2.ID, "two"}, {v3.ID, "three"}} {
			cat, err := r.CompiledVersion(tt.id)
			if err != nil {
				t.Fatalf("CompiledVersion(%s): %v", tt.id, err)
			}
			if cat.Version != tt.id || headline(t, cat) != tt.headline {
				t.Errorf("CompiledVersion(%s): version %s, headline %s", tt.id, cat.Version, headline(t, cat))
			}
		}
		if _, err := r.CompiledVersion(v1.ID); !errors.Is(err, ErrUnknownVersion) {
			t.Errorf("a pruned version: %v, want ErrUnknownVersion", err)
		}
		cat, err := r.Compile(catalog("four"))
		if err != nil || cat.Version != VersionOf(catalog("four")) || headline(t, cat) != "four" {
			t.Errorf("Compile: %v, %v", cat, err)
		}
		if r.Catalog().Load().Version != v3.ID {
			t.Error("Compile put its catalog in force")
		}
		var errs rules.Errors
		if _, err := r.Compile([]byte("offers: 3\n")); !errors.As(err, &errs) {
			t.Errorf("Compile of a bad catalog: %v, want rules.Errors", err)
		}
		if dir == "" {
			continue
		}
		closed(t, r)
		src, err := ReadVersion(dir, v2.ID)
		if err != nil || string(src) != string(catalog("two")) {
			t.Errorf("ReadVersion(%s): %q, %v", v2.ID, src, err)
		}
		for _, id := range []string{v1.ID, "000000000000", "../../etc/pa"} {
			if _, err := ReadVersion(dir, id); !errors.Is(err, ErrUnknownVersion) {
				t.Errorf("ReadVersion(%s): %v, want ErrUnknownVersion", id, err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, v3.ID+".yaml"), catalog("edited"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadVersion(dir, v3.ID); err == nil || !strings.Contains(err.Error(), "changed") {
			t.Errorf("an edited source: %v", err)
		}
	}
}
