package nextbest_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The import graph points one way: cmd → httpapi → nextbest → decision →
// rules → featurestore (STYLE rule 1). decision/deps_test.go keeps the
// engine pure; these keep the service transport-free and the HTTP
// package free of storage and the catalog registry.
var (
	// serviceForbidden are the trees the service must not reach, directly
	// or not: transports, caches, stores, and the layers above it.
	serviceForbidden = []string{
		"net/http",
		"github.com/valyala",     // fasthttp
		"github.com/redis",       // go-redis
		"github.com/dgraph-io",   // ristretto
		"github.com/cockroachdb", // pebble
		"github.com/nextbest/nextbest/httpapi",
		"github.com/nextbest/nextbest/featurestore/cache",
		"github.com/nextbest/nextbest/featurestore/embedded",
		"github.com/nextbest/nextbest/featurestore/redisstore",
		"github.com/nextbest/nextbest/internal/catalogs",
	}
	// serviceNotImported are what the service may reach only through
	// another package: YAML is rules' business.
	serviceNotImported = []string{"go.yaml.in/yaml/v3", "gopkg.in/yaml.v3"}
	// httpapiForbidden: the HTTP package asks the service, never a store
	// backend or the catalog registry (cmd wires those in).
	httpapiForbidden = []string{
		"github.com/nextbest/nextbest/featurestore/cache",
		"github.com/nextbest/nextbest/featurestore/embedded",
		"github.com/nextbest/nextbest/featurestore/redisstore",
		"github.com/nextbest/nextbest/internal/catalogs",
	}
)

func under(path, tree string) bool { return path == tree || strings.HasPrefix(path, tree+"/") }

// badDeps returns the packages of deps under a forbidden tree.
func badDeps(deps, forbidden []string) []string {
	var bad []string
	for _, d := range deps {
		if slices.ContainsFunc(forbidden, func(f string) bool { return under(d, f) }) {
			bad = append(bad, d)
		}
	}
	return bad
}

// goList runs go list with args and returns its lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go") // go test puts its own go first in PATH
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, append([]string{"list"}, args...)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list %v: %v\n%s", args, err, stderr)
	}
	return strings.Fields(string(out))
}

func TestImportGraph(t *testing.T) {
	tests := []struct {
		pkg       string
		forbidden []string
		mustReach string // proves the listing is real
	}{
		{".", serviceForbidden, "github.com/nextbest/nextbest/decision"},
		{"./httpapi", httpapiForbidden, "github.com/nextbest/nextbest"},
	}
	for _, tt := range tests {
		deps := goList(t, "-deps", tt.pkg)
		if !slices.Contains(deps, tt.mustReach) {
			t.Fatalf("go list -deps %s lacks %s; got %v", tt.pkg, tt.mustReach, deps)
		}
		for _, b := range badDeps(deps, tt.forbidden) {
			t.Errorf("%s depends on %s (go list -deps %s shows the path)", tt.pkg, b, tt.pkg)
		}
	}
	imports := goList(t, "-f", "{{join .Imports \" \"}}", ".")
	for _, b := range badDeps(imports, serviceNotImported) {
		t.Errorf("the service imports %s itself; YAML is read by rules", b)
	}
}

// TestBadDeps checks the checker on a made-up dependency list.
func TestBadDeps(t *testing.T) {
	deps := []string{
		"fmt", "net/http", "net/http/httptrace", "net", "github.com/valyala/fasthttp",
		"github.com/nextbest/nextbest/featurestore", "github.com/nextbest/nextbest/featurestore/embedded",
		"github.com/nextbest/nextbest/internal/catalogs", "github.com/nextbest/nextbest/internal/catalogtest",
		"github.com/nextbest/nextbest/httpapi", "github.com/redis/go-redis/v9",
	}
	tests := []struct {
		forbidden []string
		want      []string
	}{
		{serviceForbidden, []string{"net/http", "net/http/httptrace", "github.com/valyala/fasthttp",
			"github.com/nextbest/nextbest/featurestore/embedded", "github.com/nextbest/nextbest/internal/catalogs",
			"github.com/nextbest/nextbest/httpapi", "github.com/redis/go-redis/v9"}},
		{httpapiForbidden, []string{"github.com/nextbest/nextbest/featurestore/embedded", "github.com/nextbest/nextbest/internal/catalogs"}},
	}
	for _, tt := range tests {
		if got := badDeps(deps, tt.forbidden); !slices.Equal(got, tt.want) {
			t.Errorf("badDeps =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}
