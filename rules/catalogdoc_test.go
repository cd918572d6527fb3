package rules_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/rules"
)

// catalogDoc is the catalog reference whose examples TestCatalogDoc
// checks; docName is how failures name it.
const (
	catalogDoc = "../docs/catalog.md"
	docName    = "docs/catalog.md"
)

// minDocBlocks is the fewest checked examples the reference may hold, so
// that losing the markers (or the file) cannot make the test pass vacuously.
const minDocBlocks = 15

// docBlock is one ```yaml fenced block of the reference.
type docBlock struct {
	line  int      // 1-based line of the block's first line inside the fence
	lines []string // the block's lines, without the fences
}

// yamlBlocks returns the ```yaml fenced blocks of md, reporting a fence
// left open.
func yamlBlocks(md []byte) ([]docBlock, error) {
	var blocks []docBlock
	var cur *docBlock
	inFence := false
	sc := bufio.NewScanner(bytes.NewReader(md))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case !inFence && strings.HasPrefix(line, "```"):
			inFence = true
			if strings.TrimSpace(strings.TrimPrefix(line, "```")) == "yaml" {
				blocks = append(blocks, docBlock{line: n + 1})
				cur = &blocks[len(blocks)-1]
			}
		case inFence && strings.TrimSpace(line) == "```":
			inFence, cur = false, nil
		case cur != nil:
			cur.lines = append(cur.lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if inFence {
		return nil, errors.New("a fenced block is not closed")
	}
	return blocks, nil
}

// TestCatalogDoc loads the examples of docs/catalog.md, so the reference
// cannot drift from the loader: a block whose first line is `# catalog`
// must load, and a block whose first line is `# invalid` must fail with an
// error containing the text after `# error:` on its second line. Other
// yaml blocks are fragments and are not checked.
func TestCatalogDoc(t *testing.T) {
	checkDocExamples(t, catalogDoc, docName, minDocBlocks)
}

// checkDocExamples loads the marked yaml examples of the markdown file
// path (named docName in failures), as TestCatalogDoc says, and wants at
// least `least` of them.
func checkDocExamples(t *testing.T, path, docName string, least int) {
	md, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := yamlBlocks(md)
	if err != nil {
		t.Fatalf("%s: %v", docName, err)
	}
	checked := 0
	for _, b := range blocks {
		if len(b.lines) == 0 {
			continue
		}
		first := strings.TrimSpace(b.lines[0])
		where := fmt.Sprintf("%s:%d", docName, b.line)
		// Blank lines in front of the block make the loader's line
		// numbers those of the document.
		src := []byte(strings.Repeat("\n", b.line-1) + strings.Join(b.lines, "\n") + "\n")
		switch first {
		case "# catalog":
			checked++
			t.Run(fmt.Sprintf("catalog_line_%d", b.line), func(t *testing.T) {
				if _, err := rules.Load(docName, src); err != nil {
					t.Errorf("%s: the example does not load:\n%v", where, err)
				}
			})
		case "# invalid":
			checked++
			t.Run(fmt.Sprintf("invalid_line_%d", b.line), func(t *testing.T) {
				want, ok := "", len(b.lines) > 1
				if ok {
					want, ok = strings.CutPrefix(strings.TrimSpace(b.lines[1]), "# error:")
					want = strings.TrimSpace(want)
				}
				if !ok || want == "" {
					t.Fatalf("%s: an # invalid example needs `# error: <text>` on its second line", where)
				}
				_, err := rules.Load(docName, src)
				if err == nil {
					t.Fatalf("%s: the example loads, want an error containing %q", where, want)
				}
				if got := err.Error(); !strings.Contains(got, want) {
					t.Errorf("%s: got error\n%s\nwant it to contain %q", where, got, want)
				}
			})
		default:
			// A marker with a typo would silently turn an example into
			// an unchecked fragment.
			low := strings.ToLower(first)
			if strings.HasPrefix(low, "# catalog") || strings.HasPrefix(low, "# invalid") {
				t.Errorf("%s: first line %q: want exactly `# catalog` or `# invalid`", where, first)
			}
		}
	}
	if checked < least {
		t.Errorf("%s has %d checked examples (# catalog or # invalid), want at least %d", docName, checked, least)
	}
}

// TestExperimentsDoc loads the catalogs of docs/experiments.md, the guide
// to running experiments, as TestCatalogDoc loads the reference's.
func TestExperimentsDoc(t *testing.T) {
	checkDocExamples(t, "../docs/experiments.md", "docs/experiments.md", 4)
}
