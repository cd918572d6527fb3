package rules

// Where an author error is: every error carries the file, line and column
// of the YAML node it is about, and an expression error the position
// inside the expression, mapped back to the file.

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

func (l *loader) errorf(n *yaml.Node, object, field, format string, args ...any) {
	e := &Error{File: l.file, Object: object, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	l.errs = append(l.errs, e)
}

// exprError reports eerr, an error of the expression src read from n, at
// its position in the file, quoting the expression on one line.
func (l *loader) exprError(n *yaml.Node, obj, field, src string, eerr *exprError) {
	line, col := n.Line, n.Column
	if eerr.line > 0 {
		line, col = l.locate(n, exprOffset(src, eerr.line, eerr.column))
		if !l.inFile(line, col) {
			line, col = n.Line, n.Column
		}
	}
	quoted := strings.Join(strings.Fields(src), " ")
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Column: col, Object: obj, Field: field, Msg: eerr.msg + " in `" + quoted + "`"})
}

// exprOffset converts a 1-based line and column within src, counted in
// characters as expr counts them, to a character offset.
func exprOffset(src string, line, col int) int {
	off := 0
	for i := 1; i < line; i++ {
		nl := strings.IndexByte(src, '\n')
		if nl < 0 {
			break
		}
		off += utf8.RuneCountInString(src[:nl]) + 1
		src = src[nl+1:]
	}
	return off + max(col-1, 0)
}

// inFile reports whether line and col fall inside the file: on one of its
// lines, at most just past the line's end.
func (l *loader) inFile(line, col int) bool {
	return line >= 1 && line <= len(l.lines) && col >= 1 && col <= utf8.RuneCountInString(l.lines[line-1])+1
}

// splitLines splits data into lines where YAML breaks them, as the
// positions yaml.v3 reports count them (see breakWidth).
func splitLines(data string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(data); {
		w := breakWidth(data, i)
		if w == 0 {
			i++
			continue
		}
		lines = append(lines, data[start:i])
		i += w
		start = i
	}
	return append(lines, data[start:])
}

// breakWidth returns the length in bytes of the line break at data[i], 0
// if none: \r\n, \r, \n, and the Unicode breaks NEL, LS and PS, which
// yaml.v3 counts as line breaks too.
func breakWidth(data string, i int) int {
	switch {
	case data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n':
		return 2
	case data[i] == '\r' || data[i] == '\n':
		return 1
	case strings.HasPrefix(data[i:], "\u0085"):
		return 2
	case strings.HasPrefix(data[i:], "\u2028"), strings.HasPrefix(data[i:], "\u2029"):
		return 3
	}
	return 0
}

// locate maps a character offset within the value of scalar n to a line
// and column of the file, both counted in characters as YAML counts them.
// A multi-line value (a block scalar, or a plain or quoted scalar folded
// over lines) is the file's lines joined by line breaks or single spaces,
// so walking the rows it came from finds the offset; escapes in
// double-quoted values count as one character, an escaped line break as
// none. A position the walk cannot place is n's own.
func (l *loader) locate(n *yaml.Node, offset int) (line, col int) {
	type row struct {
		line, col int    // where the row's text starts, 1-based
		text      []rune // the row's characters
		blank     bool   // an empty line inside a flow scalar: folds to a line break
	}
	var rows []row
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		indent := -1
		for i := n.Line; i < len(l.lines); i++ { // n.Line is the indicator's line
			t := []rune(l.lines[i])
			trimmed := trimLeftRunes(t, " ")
			if len(trimmed) == 0 {
				if indent >= 0 {
					rows = append(rows, row{line: i + 1, col: indent + 1})
				}
				continue
			}
			ind := len(t) - len(trimmed)
			if indent < 0 {
				indent = ind
			}
			if ind < indent {
				break
			}
			rows = append(rows, row{line: i + 1, col: indent + 1, text: t[indent:]})
		}
	default:
		if n.Line < 1 || n.Line > len(l.lines) {
			return n.Line, n.Column
		}
		start := n.Column - 1
		if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
			start++
		}
		first := []rune(l.lines[n.Line-1])
		if start > len(first) {
			return n.Line, n.Column
		}
		rows = append(rows, row{line: n.Line, col: start + 1, text: first[start:]})
		for i := n.Line; i < len(l.lines) && i < n.Line+100; i++ {
			t := []rune(l.lines[i])
			trimmed := trimLeftRunes(t, " \t")
			rows = append(rows, row{line: i + 1, col: len(t) - len(trimmed) + 1, text: trimmed, blank: len(trimRightRunes(trimmed, " \t")) == 0})
		}
	}
	flow := n.Style != yaml.LiteralStyle && n.Style != yaml.FoldedStyle
	for i, r := range rows {
		if flow && r.blank {
			// The break before a run of empty lines is dropped and each
			// empty line becomes one line break: the run is as wide as
			// the space it replaces, plus one per empty line after the first.
			if i > 0 && rows[i-1].blank {
				offset--
			}
			continue
		}
		text := r.text
		if flow && i+1 < len(rows) {
			text = trimRightRunes(text, " \t") // folding drops a line's trailing blanks
		}
		width, raw := len(text), offset
		sep := 1
		switch n.Style {
		case yaml.DoubleQuotedStyle:
			var escapedBreak bool
			width, raw, escapedBreak = unescapedWidth(text, offset)
			if escapedBreak {
				sep = 0
			}
		case yaml.SingleQuotedStyle:
			width, raw = singleQuotedWidth(text, offset)
		}
		if offset < width || offset == width && sep > 0 {
			return r.line, r.col + raw
		}
		offset -= width + sep
		if offset < 0 {
			break
		}
	}
	return n.Line, n.Column
}

// unescapedWidth returns how many characters the double-quoted text
// decodes to, the raw index of decoded character offset, and whether the
// text ends in an escaped line break (a backslash ending the line).
func unescapedWidth(text []rune, offset int) (width, raw int, escapedBreak bool) {
	raw = -1
	for i := 0; i < len(text); i++ {
		if width == offset && raw < 0 {
			raw = i
		}
		if text[i] == '"' {
			break
		}
		if text[i] == '\\' {
			if i+1 == len(text) {
				escapedBreak = true
				break
			}
			switch text[i+1] {
			case 'x':
				i += 3
			case 'u':
				i += 5
			case 'U':
				i += 9
			default:
				i++
			}
		}
		width++
	}
	if raw < 0 {
		raw = len(text)
	}
	return width, raw, escapedBreak
}

// singleQuotedWidth returns how many characters the single-quoted text
// decodes to (two quotes are one) and the raw index of decoded character
// offset.
func singleQuotedWidth(text []rune, offset int) (width, raw int) {
	raw = -1
	for i := 0; i < len(text); i++ {
		if width == offset && raw < 0 {
			raw = i
		}
		if text[i] == '\'' {
			if i+1 == len(text) || text[i+1] != '\'' {
				break
			}
			i++
		}
		width++
	}
	if raw < 0 {
		raw = len(text)
	}
	return width, raw
}

func trimLeftRunes(t []rune, cut string) []rune {
	for len(t) > 0 && strings.ContainsRune(cut, t[0]) {
		t = t[1:]
	}
	return t
}

func trimRightRunes(t []rune, cut string) []rune {
	for len(t) > 0 && strings.ContainsRune(cut, t[len(t)-1]) {
		t = t[:len(t)-1]
	}
	return t
}
