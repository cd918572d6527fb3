package rules

// Where an author error is: every error carries the file, line and column
// of the YAML node it is about, and an expression error the position
// inside the expression, mapped back to the file.

import (
	"fmt"
	"strings"

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
	}
	quoted := strings.Join(strings.Fields(src), " ")
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Column: col, Object: obj, Field: field, Msg: eerr.msg + " in `" + quoted + "`"})
}

// exprOffset converts a 1-based line and column within src to a byte offset.
func exprOffset(src string, line, col int) int {
	off := 0
	for i := 1; i < line; i++ {
		nl := strings.IndexByte(src[off:], '\n')
		if nl < 0 {
			break
		}
		off += nl + 1
	}
	return off + max(col-1, 0)
}

// locate maps a byte offset within the value of scalar n to a line and
// column of the file. A multi-line value (a block scalar, or a plain or
// quoted scalar folded over lines) is the file's lines joined by a single
// character (newline or space), so walking the rows it came from finds
// the offset; escapes in double-quoted values count as one character.
func (l *loader) locate(n *yaml.Node, offset int) (line, col int) {
	type row struct {
		line, col int // where the row's text starts, 1-based
		text      string
	}
	var rows []row
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		indent := -1
		for i := n.Line; i < len(l.lines); i++ { // n.Line is the indicator's line
			t := l.lines[i]
			trimmed := strings.TrimLeft(t, " ")
			if trimmed == "" {
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
		first := l.lines[n.Line-1]
		if start > len(first) {
			return n.Line, n.Column
		}
		rows = append(rows, row{line: n.Line, col: start + 1, text: first[start:]})
		for i := n.Line; i < len(l.lines) && i < n.Line+100; i++ {
			t := l.lines[i]
			trimmed := strings.TrimLeft(t, " ")
			rows = append(rows, row{line: i + 1, col: len(t) - len(trimmed) + 1, text: trimmed})
		}
	}
	for _, r := range rows {
		width := len(r.text)
		raw := offset
		if n.Style == yaml.DoubleQuotedStyle {
			width, raw = unescapedWidth(r.text, offset)
		}
		if offset <= width {
			return r.line, r.col + raw
		}
		offset -= width + 1
	}
	return n.Line, n.Column
}

// unescapedWidth returns how many characters the double-quoted text
// decodes to, and the raw index of decoded character offset.
func unescapedWidth(text string, offset int) (width, raw int) {
	raw = -1
	for i := 0; i < len(text); i++ {
		if width == offset && raw < 0 {
			raw = i
		}
		if text[i] == '"' {
			break
		}
		if text[i] == '\\' && i+1 < len(text) {
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
	return width, raw
}
