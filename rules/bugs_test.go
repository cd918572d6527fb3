package rules_test

// Failing tests for bugs in the rules package, kept apart until the code
// is fixed; each says what an author sees and what they should see.

import (
	"errors"
	"strings"
	"testing"

	"github.com/nextbest/nextbest/rules"
)

// wantAt loads src and checks that its single error points at the first
// occurrence of token on or after line 8 (1-based line and rune column).
func wantAt(t *testing.T, src, token string) {
	t.Helper()
	_, err := rules.Load("catalog.yaml", []byte(src))
	var errs rules.Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("Load = %v, want one error", err)
	}
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	for i := 7; i < len(lines); i++ {
		if k := strings.Index(lines[i], token); k >= 0 {
			line, col := i+1, len([]rune(lines[i][:k]))+1
			if errs[0].Line != line || errs[0].Column != col {
				t.Errorf("error %q at %d:%d, want %d:%d (%s in %q)", errs[0], errs[0].Line, errs[0].Column, line, col, token, lines[i])
			}
			return
		}
	}
	t.Fatalf("no %q in the source", token)
}

const bugHead = "channels: [web]\nfeatures:\n  tier: {type: string}\noffers:\n  - id: a\n    channels: [web]\n    content: {web: {h: x}}\n"

// In a catalog with CRLF line ends (written on Windows), an error in a
// folded rule drifts one column left per line before it: load.go splits
// l.lines on "\n" only, so each row of locate() keeps its "\r" and counts
// one character more than the folded value has.
// Got 11:17, want 11:19.
func TestBugCRLFFoldedRuleColumn(t *testing.T) {
	src := bugHead + "    eligible: >-\n      customer.tier == \"x\"\n      && customer.tier == \"y\"\n      && customer.tierr == \"x\"\n"
	wantAt(t, strings.ReplaceAll(src, "\n", "\r\n"), "tierr")
}

// In a double-quoted rule, a \uXXXX (or \xXX, \UXXXXXXXX) escape before
// the error is counted as two raw characters: load.go, unescapedWidth
// skips only the character after a backslash. Got 8:51, want 8:59.
func TestBugDoubleQuotedUnicodeEscapeColumn(t *testing.T) {
	wantAt(t, bugHead+"    eligible: \"customer.tier == \\u0022x\\u0022 && customer.tierr == \\\"x\\\"\"\n", "tierr")
}
