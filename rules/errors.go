package rules

import (
	"fmt"
	"strings"
)

// Error is one problem in a catalog, located for its author.
type Error struct {
	File   string // file name as given to Load
	Line   int    // 1-based; 0 if unknown
	Column int    // 1-based; 0 if unknown
	Object string // e.g. `offer "cart-reminder"`, `segment "vip"`, `feature "tier"`
	Field  string // e.g. "eligible", "content.sms"
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Object != "" {
		b.WriteString(e.Object)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a catalog, in file order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}
