package rules

// Content made for the customer: a content string may hold templates,
// "Hi {{customer.first_name | default \"there\"}}", parsed and checked
// against the feature schema at load, compiled into the content's JSON
// with holes where the values go, and rendered per decision by appending
// the literal JSON and each value, escaped as the channel says. The
// grammar is ours and small on purpose (no text/template): a feature's
// value, a default for a missing one, a quoted literal.
//
//	template := { text | action }
//	action   := "{{" expr [ "|" "default" string ] "}}"   (blanks allowed around each token)
//	expr     := "customer." feature | string
//	string   := a double-quoted Go string literal, e.g. "there" or "{{"

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/nextbest/nextbest/featurestore"
)

// Escape is how a channel's content escapes the customer's values that
// templates put into it. Text the catalog's author wrote (around the
// templates, and defaults) is never escaped: it may hold markup.
type Escape uint8

// Escapes.
const (
	// EscapeNone puts values in as they are: SMS, app, call center.
	EscapeNone Escape = iota
	// EscapeHTML replaces & < > " ' with HTML character references, as
	// html.EscapeString does: content a browser or a mail client renders
	// as HTML, where a name like <script> must stay text.
	EscapeHTML
)

func (e Escape) String() string {
	if e == EscapeHTML {
		return "html"
	}
	return "none"
}

// defaultEscape is the escape of a channel whose declaration sets no
// content_escape: html for the channels called web and email, whose
// content is HTML; none for every other.
func defaultEscape(channel string) Escape {
	if channel == "web" || channel == "email" {
		return EscapeHTML
	}
	return EscapeNone
}

// contentEscape reads a channel's content_escape: html or none.
func (l *loader) contentEscape(ch *Channel, n *yaml.Node) {
	ch.Escape = defaultEscape(ch.Name)
	s, ok := l.str(n, fmt.Sprintf("channel %q", ch.Name), "content_escape")
	if !ok {
		return
	}
	switch s {
	case "html":
		ch.Escape = EscapeHTML
	case "none":
		ch.Escape = EscapeNone
	default:
		l.errorf(n, fmt.Sprintf("channel %q", ch.Name), "content_escape", "%q is not html or none", s)
	}
}

// tmplPart is a piece of a parsed content string: literal text, or an
// action that puts a feature's value.
type tmplPart struct {
	text       string // the literal text; for an action, its default
	feature    string // the feature an action reads; "" for literal text
	hasDefault bool
	// Byte offsets in the string: of the action's "{{" and of the
	// feature's name (after "customer."), for errors.
	at, nameAt int
}

// tmplError is a template that does not parse, at a byte offset of its
// string.
type tmplError struct {
	at  int
	msg string
}

// maxTemplateActions bounds the actions of one string: rendering is a
// copy per action, and a catalog's content is for people to read.
const maxTemplateActions = 64

// parseTemplate parses s. Adjacent literal text (quoted literals
// included) comes back as one part; a string without actions is one
// literal part, or none when empty.
func parseTemplate(s string) ([]tmplPart, *tmplError) {
	var parts []tmplPart
	var lit strings.Builder
	litAt := 0
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, tmplPart{text: lit.String(), at: litAt})
			lit.Reset()
		}
	}
	actions := 0
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], "{{")
		if j < 0 {
			if lit.Len() == 0 {
				litAt = i
			}
			lit.WriteString(s[i:])
			break
		}
		if j > 0 {
			if lit.Len() == 0 {
				litAt = i
			}
			lit.WriteString(s[i : i+j])
		}
		open := i + j
		if actions++; actions > maxTemplateActions {
			return nil, &tmplError{at: open, msg: fmt.Sprintf("more than %d {{ }} in one string", maxTemplateActions)}
		}
		p, end, err := parseAction(s, open)
		if err != nil {
			return nil, err
		}
		if p.feature == "" {
			if lit.Len() == 0 {
				litAt = open
			}
			lit.WriteString(p.text) // a quoted literal
		} else {
			flush()
			parts = append(parts, p)
		}
		i = end
	}
	flush()
	return parts, nil
}

// parseAction parses the action whose "{{" is at s[open:], returning it
// and the offset just past its "}}".
func parseAction(s string, open int) (tmplPart, int, *tmplError) {
	p := tmplPart{at: open}
	unclosed := &tmplError{at: open, msg: "{{ is not closed (want }})"}
	i := skipBlanks(s, open+2)
	switch {
	case i >= len(s):
		return p, 0, unclosed
	case s[i] == '"':
		str, end, err := parseQuoted(s, i)
		if err != nil {
			return p, 0, err
		}
		p.text, i = str, end
	case strings.HasPrefix(s[i:], "}}"):
		return p, 0, &tmplError{at: open, msg: `{{ }} is empty (want customer.<feature>, or a quoted string like "{{")`}
	default:
		start := i
		for i < len(s) && (isIdentByte(s[i]) || s[i] == '.') {
			i++
		}
		word := s[start:i]
		name, ok := strings.CutPrefix(word, "customer.")
		if !ok || !identRE.MatchString(name) {
			if word == "" {
				word = s[start : start+runeLen(s[start:])]
			}
			return p, 0, &tmplError{at: start, msg: fmt.Sprintf(`%q: want customer.<feature>, or a quoted string like "{{"`, word)}
		}
		p.feature, p.nameAt = name, start+len("customer.")
	}
	i = skipBlanks(s, i)
	if i < len(s) && s[i] == '|' {
		i = skipBlanks(s, i+1)
		start := i
		for i < len(s) && isIdentByte(s[i]) {
			i++
		}
		if word := s[start:i]; word != "default" {
			if word == "" {
				return p, 0, &tmplError{at: start, msg: `| must be followed by default "<text>"`}
			}
			return p, 0, &tmplError{at: start, msg: fmt.Sprintf(`unknown filter %q (want default "<text>")`, word)}
		}
		if p.feature == "" {
			return p, 0, &tmplError{at: start, msg: "a quoted string needs no default"}
		}
		i = skipBlanks(s, i)
		if i >= len(s) || s[i] != '"' {
			return p, 0, &tmplError{at: min(i, len(s)), msg: `default must be followed by a double-quoted string, like default "there"`}
		}
		str, end, err := parseQuoted(s, i)
		if err != nil {
			return p, 0, err
		}
		p.text, p.hasDefault = str, true
		i = skipBlanks(s, end)
	}
	switch {
	case strings.HasPrefix(s[i:], "}}"):
		return p, i + 2, nil
	case i >= len(s):
		return p, 0, unclosed
	}
	return p, 0, &tmplError{at: i, msg: fmt.Sprintf("unexpected %q (want }})", s[i:i+runeLen(s[i:])])}
}

// parseQuoted parses the double-quoted Go string literal at s[i:],
// returning its value and the offset just past its closing quote.
func parseQuoted(s string, i int) (string, int, *tmplError) {
	j := i + 1
	for ; j < len(s); j++ {
		if s[j] == '\\' {
			j++
			continue
		}
		if s[j] == '"' {
			break
		}
	}
	if j >= len(s) {
		return "", 0, &tmplError{at: i, msg: "the quoted string is not closed"}
	}
	str, err := strconv.Unquote(s[i : j+1])
	if err != nil {
		return "", 0, &tmplError{at: i, msg: fmt.Sprintf("%s is not a valid quoted string (Go syntax: \\\" for a quote, \\\\ for a backslash)", s[i:j+1])}
	}
	return str, j + 1, nil
}

func skipBlanks(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

func isIdentByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// runeLen is the length in bytes of the first character of s (1 for
// invalid UTF-8), 0 when s is empty.
func runeLen(s string) int {
	if s == "" {
		return 0
	}
	_, n := utf8.DecodeRuneInString(s)
	return n
}

// template is a content's JSON with holes: slots[i] goes at json offset
// slots[i].at, in order.
type template struct {
	json  []byte
	slots []slot
}

// slot is where a template puts a feature's value.
type slot struct {
	at      int
	feature int               // index in the schema
	kind    featurestore.Type // the feature's type
	escape  Escape
	def     []byte // the default, JSON-escaped, for a missing value
}

// Templated reports whether c holds templates, which a decision renders
// for its customer (AppendJSON); false for nil.
func (c *Content) Templated() bool { return c != nil && c.tmpl != nil }

// AppendJSON appends c as JSON to dst, its templates filled in from f,
// the customer's features indexed by the catalog's schema. Content
// without templates is its JSON as is. It allocates nothing when dst has
// room.
//
// Values are written as text: a string as it is, a number in the
// shortest decimal that reads back the same (3, 2.5, 1e+21 from 1e21 up),
// a bool as true or false, a time in RFC 3339 in UTC to the second, a
// list as its elements joined by ", ". An empty string, the zero time
// and an empty list are missing: the template's default, else nothing.
// Each value is then escaped as the channel says (Escape) and as a JSON
// string must be.
func (c *Content) AppendJSON(dst []byte, f featurestore.Vector) []byte {
	t := c.tmpl
	if t == nil {
		return append(dst, c.JSON...)
	}
	prev := 0
	for i := range t.slots {
		s := &t.slots[i]
		dst = append(dst, t.json[prev:s.at]...)
		prev = s.at
		var v featurestore.Value
		if s.feature < len(f) {
			v = f[s.feature]
		}
		dst = s.appendValue(dst, &v)
	}
	return append(dst, t.json[prev:]...)
}

func (s *slot) appendValue(dst []byte, v *featurestore.Value) []byte {
	switch s.kind {
	case featurestore.TypeString:
		if v.Str != "" {
			return appendText(dst, v.Str, s.escape)
		}
	case featurestore.TypeNumber:
		f := v.Num
		if math.IsNaN(f) || math.IsInf(f, 0) {
			break
		}
		// Digits, sign, point and exponent: nothing to escape.
		if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
			return strconv.AppendFloat(dst, f, 'e', -1, 64)
		}
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	case featurestore.TypeBool:
		return strconv.AppendBool(dst, v.Int != 0)
	case featurestore.TypeTime:
		if v.Int != 0 {
			return v.AsTime().UTC().AppendFormat(dst, time.RFC3339)
		}
	case featurestore.TypeList:
		for i, e := range v.List {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = appendText(dst, e, s.escape)
		}
		if len(v.List) > 0 {
			return dst
		}
	}
	return append(dst, s.def...)
}

// htmlRefs are the HTML escapes of EscapeHTML, those of html.EscapeString.
var htmlRefs = [256]string{'&': "&amp;", '<': "&lt;", '>': "&gt;", '"': "&#34;", '\'': "&#39;"}

// appendText appends s escaped by e, then as the inside of a JSON string:
// quotes, backslashes and control characters escaped, invalid UTF-8 as
// U+FFFD, and U+2028 and U+2029 escaped as encoding/json does.
func appendText(dst []byte, s string, e Escape) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			ref := ""
			if e == EscapeHTML {
				ref = htmlRefs[c]
			}
			if ref == "" && c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch {
			case ref != "":
				dst = append(dst, ref...)
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			switch r {
			case '\u2028':
				dst = append(dst, `\u2028`...)
			case '\u2029':
				dst = append(dst, `\u2029`...)
			default:
				dst = append(dst, `\ufffd`...)
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

const hexDigits = "0123456789abcdef"

// contentBuilder compiles the templates of one content mapping: the
// strings holding "{{", checked against the schema, their values escaped
// as the content's channel says.
type contentBuilder struct {
	l      *loader
	schema *featurestore.Schema
	escape Escape
	obj    string
	slots  []slot
	failed bool // a template had an error, reported
}

// templateString appends the JSON string of scalar n, a string holding
// "{{", as literal JSON with a slot per action.
func (b *contentBuilder) templateString(dst []byte, n *yaml.Node, field string) []byte {
	s := n.Value
	parts, perr := parseTemplate(s)
	if perr != nil {
		b.fail(n, field, s, perr.at, perr.msg)
		return dst
	}
	dst = append(dst, '"')
	for _, p := range parts {
		if p.feature == "" {
			dst = appendLiteral(dst, p.text)
			continue
		}
		f, known := b.schema.Lookup(p.feature)
		switch {
		case !known && slices.Contains(b.l.broken, p.feature):
			b.failed = true // declared with an error of its own, already reported
			continue
		case !known:
			b.fail(n, field, s, p.nameAt, fmt.Sprintf("unknown feature %s%s in %s", p.feature, b.suggest(p.feature), actionText(s, p.at)))
			continue
		case p.hasDefault && (f.Type == featurestore.TypeNumber || f.Type == featurestore.TypeBool):
			b.fail(n, field, s, p.at, fmt.Sprintf("feature %s is a %s, which always has a value (the feature's default): it takes no default in %s", p.feature, f.Type, actionText(s, p.at)))
			continue
		}
		sl := slot{at: len(dst), feature: f.Index, kind: f.Type, escape: b.escape}
		if p.hasDefault {
			sl.def = appendLiteral(nil, p.text)
		}
		b.slots = append(b.slots, sl)
	}
	return append(dst, '"')
}

// appendLiteral appends the author's text s inside a JSON string, as
// encoding/json writes it (so a templated string reads like the rest of
// the content's JSON).
func appendLiteral(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b[1:len(b)-1]...)
}

// fail reports a template error at byte offset at of s, the value of n.
func (b *contentBuilder) fail(n *yaml.Node, field, s string, at int, msg string) {
	b.failed = true
	line, col := b.l.locate(n, utf8.RuneCountInString(s[:at]))
	if !b.l.inFile(line, col) {
		line, col = n.Line, n.Column
	}
	b.l.errs = append(b.l.errs, &Error{File: b.l.file, Line: line, Column: col, Object: b.obj, Field: field, Msg: msg})
}

// suggest names the feature closest to name, if one is a typo away.
func (b *contentBuilder) suggest(name string) string {
	best, bestD := "", 3
	for _, f := range b.schema.Features() {
		if d := editDistance(name, f.Name, bestD); d < bestD {
			best, bestD = f.Name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// editDistance is the Levenshtein distance of a and b in bytes, or limit
// when it is limit or more.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

// actionText quotes the action at s[at:] for an error message.
func actionText(s string, at int) string {
	end := strings.Index(s[at:], "}}")
	if end < 0 {
		return "`" + s[at:] + "`"
	}
	return "`" + s[at:at+end+2] + "`"
}

// hasTemplate reports whether any string in x, a decoded content value,
// holds "{{".
func hasTemplate(x any) bool {
	switch v := x.(type) {
	case string:
		return strings.Contains(v, "{{")
	case map[string]any:
		for _, e := range v {
			if hasTemplate(e) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if hasTemplate(e) {
				return true
			}
		}
	}
	return false
}
