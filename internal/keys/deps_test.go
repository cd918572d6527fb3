package keys

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTransport: the key domain is what the keys CLI and the bench
// import to edit a keys file, so it must not pull in a transport.
func TestNoTransport(t *testing.T) {
	goTool, err := exec.LookPath("go") // go test puts its own go first in PATH
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"net/http", "github.com/valyala/fasthttp", "github.com/nextbest/nextbest/httpapi"} {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("internal/keys depends on %s", dep)
			}
		}
	}
}
