package embedded_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/embedded"
)

const crashDirEnv = "NEXTBEST_EMBEDDED_CRASH_DIR"

// TestCrashKeepsAcknowledgedWrites runs a writer in a child process, kills
// it with SIGKILL mid-stream, and checks that every write it saw
// acknowledged is in the store when it is opened again. (With NoSync an
// acknowledged write may still sit in pebble's in-memory log buffer.)
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const customers, enough = 10, 300
	acked := -1
	sc := bufio.NewScanner(out)
	for acked < enough && sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			fmt.Sscan(n, &acked)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if acked < enough {
		t.Fatalf("child acknowledged only %d writes", acked+1)
	}

	s := open(t, embedded.Options{Dir: dir})
	for k := range customers {
		want := 0 // increments of c-k acknowledged: i ≤ acked with i%customers == k
		for i := k; i <= acked; i += customers {
			want++
		}
		r, err := s.Load(context.Background(), fmt.Sprintf("c-%d", k))
		if err != nil {
			t.Fatal(err)
		}
		// One more may have committed without being acknowledged.
		if got := int(r.Attrs["n"].Num); got < want || got > want+1 {
			t.Errorf("c-%d: n = %d after the crash, want %d (or one more)", k, got, want)
		}
	}
}

// TestCrashChild is the writer of TestCrashKeepsAcknowledgedWrites; it does
// nothing unless run by it.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashKeepsAcknowledgedWrites")
	}
	s, err := embedded.Open(embedded.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1_000_000 { // killed long before
		id := fmt.Sprintf("c-%d", i%10)
		_, err := s.Mutate(context.Background(), []featurestore.Mutation{{CustomerID: id, Apply: func(r *featurestore.Record) bool {
			r.SetAttr("n", featurestore.Number(r.Attrs["n"].Num+1))
			return true
		}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Printf("acked %d\n", i); err != nil {
			return // the parent is gone
		}
	}
}
