package rules

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// syntaxError turns a YAML syntax error of data into an Error placed where
// the parser met the problem, with a hint for the two mistakes authors
// make most.
//
// yaml.v3 reports the line where the enclosing mapping or sequence began
// (its "context mark"), counted from 0, and no column: an unquoted rule
// that starts with a quote on line 28 is reported at line 25. The
// position of the problem itself is not exported, so it is found by
// parsing prefixes of data: the shortest prefix that fails with the same
// message ends where the parser found the problem. A binary search over
// lines, then over the bytes of the line found, costs about
// 2·log2(size) parses, only for a catalog that does not parse at all.
func (l *loader) syntaxError(data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlErrRE.FindStringSubmatch(err.Error()); m != nil {
		msg = m[2]
	}
	e := &Error{File: l.file, Msg: msg}
	fails := func(prefix []byte) bool {
		var n yaml.Node
		perr := yaml.Unmarshal(prefix, &n)
		if perr == nil {
			return false
		}
		m := yamlErrRE.FindStringSubmatch(perr.Error())
		return m != nil && m[2] == msg
	}
	// starts[i] is the offset of line i+1 in data.
	starts := []int{0}
	for i := 0; i < len(data); {
		// YAML breaks lines where splitLines does, as the positions of
		// every other error count them.
		w := breakWidth(string(data), i)
		if w == 0 {
			i++
			continue
		}
		if i += w; i < len(data) {
			starts = append(starts, i)
		}
	}
	lineEnd := func(i int) int { // end of line i+1, its newline included
		if i+1 < len(starts) {
			return starts[i+1]
		}
		return len(data)
	}
	// The first line whose end makes the prefix fail.
	line := search(len(starts), func(i int) bool { return fails(data[:lineEnd(i)]) })
	if line == len(starts) {
		// No prefix fails alike: keep what the parser said.
		if m := yamlErrRE.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
		}
		return e
	}
	start, end := starts[line], lineEnd(line)
	col := search(end-start, func(c int) bool { return fails(data[:start+c+1]) })
	text := string(data[start:end])
	if lines := splitLines(text); len(lines) > 0 {
		text = lines[0] // without its line break
	}
	e.Line, e.Column = line+1, runeColumn(text, col)
	e.Msg += syntaxHint(text, e.Column)
	return e
}

// runeColumn returns the 1-based column of the character holding byte
// offset off of line, or the column just past its end: columns count
// characters, as every other error's do, and the offset found by the
// search may fall inside a multi-byte character.
func runeColumn(line string, off int) int {
	if off >= len(line) {
		return utf8.RuneCountInString(line) + 1
	}
	col := 0
	for i := range line {
		if i > off {
			break
		}
		col++
	}
	return col
}

// search returns the smallest i in [0, n) for which f is true, n if none,
// assuming f is false then true (sort.Search, without the import).
func search(n int, f func(int) bool) int {
	lo, hi := 0, n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if !f(mid) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// syntaxHint explains the two mistakes behind most syntax errors in a
// catalog, when line (the text of the line at fault, the problem at
// 1-based col) shows one: a tab in the indentation, or a value that
// starts with a quote and goes on after the closing quote, as a rule such
// as "gold" in customer.tags does.
func syntaxHint(line string, col int) string {
	indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
	if strings.Contains(indent, "\t") {
		return " (YAML does not allow tabs in indentation: indent with spaces)"
	}
	// key: "quoted" more, or - "quoted" more: the value is only the quoted part.
	rest := strings.TrimLeft(line, " ")
	rest = strings.TrimLeft(strings.TrimPrefix(rest, "-"), " ")
	key := ""
	if k := strings.Index(rest, ": "); k >= 0 && !strings.ContainsAny(rest[:k], `"'`) {
		key, rest = rest[:k+2], strings.TrimLeft(rest[k+2:], " ")
	}
	if rest == "" || (rest[0] != '"' && rest[0] != '\'') {
		return ""
	}
	end := strings.IndexByte(rest[1:], rest[0]) + 2
	if after := strings.TrimSpace(rest[max(end, 1):]); end < 2 || after == "" || after[0] == '#' {
		return ""
	}
	example := rest
	if len(example) > 40 {
		example = example[:40] + "..."
	}
	return " (a value that starts with a quote ends at its closing quote: put the whole rule in quotes, " +
		key + "'" + strings.ReplaceAll(example, "'", "''") + "', or write it as a block scalar after >-)"
}
