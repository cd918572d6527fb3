package decision_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// forbidden are the packages, and the trees under them, the pure engine
// must never depend on, directly or not: transports, caches and stores
// (STYLE rule 1).
var forbidden = []string{
	"net/http",
	"github.com/valyala",     // fasthttp
	"github.com/redis",       // go-redis
	"github.com/dgraph-io",   // ristretto
	"github.com/cockroachdb", // pebble
}

// Outside the standard library, decision and rules may use expr, YAML and
// the pure feature model, and nothing else (not featurestore's backends).
var (
	allowedTrees = []string{"github.com/expr-lang/expr"}
	allowed      = []string{
		"go.yaml.in/yaml/v3",
		"github.com/nextbest/nextbest/featurestore",
		// JSON strings and numbers for featurestore.Value.AppendJSON:
		// a leaf of the standard library alone (anything it imported would be
		// listed here too, the list being transitive).
		"github.com/nextbest/nextbest/internal/jsonenc",
		"github.com/nextbest/nextbest/rules",
		"github.com/nextbest/nextbest/decision",
	}
)

func under(path, tree string) bool { return path == tree || strings.HasPrefix(path, tree+"/") }

// badDeps returns the problems in the output of
// go list -deps -f '{{.ImportPath}} {{.Standard}}'.
func badDeps(lines []string) []string {
	var bad []string
	for _, line := range lines {
		path, std, _ := strings.Cut(line, " ")
		switch {
		case slices.ContainsFunc(forbidden, func(f string) bool { return under(path, f) }):
			bad = append(bad, path+" is forbidden")
		case std == "true", slices.Contains(allowed, path), slices.ContainsFunc(allowedTrees, func(t string) bool { return under(path, t) }):
		default:
			bad = append(bad, path+" is outside the standard library, expr, YAML, featurestore and internal/jsonenc")
		}
	}
	return bad
}

// TestImportGraph fails if decision or rules depend, even through another
// package, on a transport, cache or store, or on anything but the
// standard library, expr, YAML and the pure featurestore model.
func TestImportGraph(t *testing.T) {
	goTool, err := exec.LookPath("go") // go test puts its own go first in PATH
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", "../decision", "../rules").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	deps := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, want := range []string{"github.com/expr-lang/expr false", "github.com/nextbest/nextbest/rules false"} {
		if !slices.Contains(deps, want) {
			t.Fatalf("go list output lacks %q; got:\n%s", want, out)
		}
	}
	for _, b := range badDeps(deps) {
		t.Errorf("decision or rules depends on %s (go list -deps ./decision ./rules shows the path)", b)
	}
}

// TestBadDeps checks the checker on a made-up dependency list.
func TestBadDeps(t *testing.T) {
	lines := []string{
		"fmt true", "net/http true", "net/http/httptrace true", "net true",
		"github.com/expr-lang/expr/vm false", "go.yaml.in/yaml/v3 false",
		"github.com/valyala/fasthttp false", "github.com/redis/go-redis/v9 false",
		"github.com/dgraph-io/ristretto/v2 false", "github.com/cockroachdb/pebble/v2 false",
		"github.com/nextbest/nextbest/featurestore false", "github.com/nextbest/nextbest/featurestore/embedded false",
		"github.com/expr-lang/exprfoo false",
	}
	want := []string{
		"net/http is forbidden", "net/http/httptrace is forbidden",
		"github.com/valyala/fasthttp is forbidden", "github.com/redis/go-redis/v9 is forbidden",
		"github.com/dgraph-io/ristretto/v2 is forbidden", "github.com/cockroachdb/pebble/v2 is forbidden",
		"github.com/nextbest/nextbest/featurestore/embedded is outside the standard library, expr, YAML, featurestore and internal/jsonenc",
		"github.com/expr-lang/exprfoo is outside the standard library, expr, YAML, featurestore and internal/jsonenc",
	}
	if got := badDeps(lines); !slices.Equal(got, want) {
		t.Errorf("badDeps =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
