package ope

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStandardLibraryOnly: the estimators depend on the standard
// library alone (doc.go), so any tool can take them.
func TestStandardLibraryOnly(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/nextbest/nextbest/internal/ope" {
			t.Errorf("ope depends on %s, outside the standard library", p)
		}
	}
}
