package httpapi

import (
	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/rules"
)

// decodeDecide is the fast path of parseDecide: one pass over the body,
// touching each byte once, for the shape nearly every decide request has —
// one object whose values are plain strings (ASCII, no escapes), small
// integers, booleans or null, with customer_id and channel present. It
// fills r exactly as parseDecide would and reports true; for anything
// else (a context object, an escape, non-ASCII bytes, an unknown or
// repeated key, any error) it reports false with r undefined, and the
// caller runs parseDecide, which accepts or explains. It never accepts a
// body parseDecide rejects (FuzzDecodeDecide checks both ways).
//
// Its byte slices point into body. It allocates nothing, resolves the
// channel without hashing and skips the parser pool, the copy of the body
// and the second (validating) pass of the slow path: BenchmarkDecodeDecide.
func decodeDecide(body []byte, c *rules.Catalog, r *decideRequest) bool {
	*r = decideRequest{limit: 1}
	d := decoder{b: body}
	if !d.consume('{') {
		return false
	}
	var seen uint8 // bit i: decideFields[i] was given
	for {
		if !d.consume('"') {
			return false
		}
		key, ok := d.plainString()
		if !ok || !d.consume(':') {
			return false
		}
		field := fieldIndex(key)
		if field < 0 || seen&(1<<field) != 0 {
			return false
		}
		seen |= 1 << field
		d.space()
		if d.i >= len(d.b) {
			return false
		}
		null := d.literal("null")
		switch field {
		case fieldCustomerID:
			if null || !d.consume('"') {
				return false
			}
			if r.customerID, ok = d.plainString(); !ok || len(r.customerID) == 0 || len(r.customerID) > maxIDLen {
				return false
			}
		case fieldCustomerToken:
			if !null {
				if !d.consume('"') {
					return false
				}
				if r.customerToken, ok = d.plainString(); !ok {
					return false
				}
			}
		case fieldChannel:
			if null || !d.consume('"') {
				return false
			}
			name, ok := d.plainString()
			if !ok {
				return false
			}
			if r.channel = channelOf(c, name); r.channel == nil {
				return false
			}
		case fieldPlacement:
			if !null {
				if !d.consume('"') {
					return false
				}
				if r.placement, ok = d.plainString(); !ok || len(r.placement) > maxIDLen {
					return false
				}
				if len(r.placement) == 0 {
					r.placement = nil // as parseDecide: empty is none
				}
			}
		case fieldLimit:
			if !null {
				if r.limit, ok = d.smallInt(); !ok || r.limit < 1 || r.limit > decision.MaxLimit {
					return false
				}
			}
		case fieldExplain:
			switch {
			case null, d.literal("false"):
			case d.literal("true"):
				r.explain = true
			default:
				return false
			}
		default: // context: an object goes to the slow path, which builds its map
			if !null {
				return false
			}
		}
		d.space()
		if d.i >= len(d.b) {
			return false
		}
		switch d.b[d.i] {
		case ',':
			d.i++
			continue
		case '}':
			d.i++
		default:
			return false
		}
		break
	}
	d.space()
	const required = 1<<fieldCustomerID | 1<<fieldChannel
	return d.i == len(d.b) && seen&required == required
}

// The indexes of decideFields.
const (
	fieldCustomerID = iota
	fieldChannel
	fieldPlacement
	fieldContext
	fieldLimit
	fieldExplain
	fieldCustomerToken
)

// decoder is decodeDecide's position in a body.
type decoder struct {
	b []byte
	i int
}

// space skips JSON whitespace.
func (d *decoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// consume skips whitespace and then c, reporting whether c was there.
func (d *decoder) consume(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// plainString reads the rest of a string whose opening quote was
// consumed, reporting false for an escape, a control character or a
// non-ASCII byte (the slow path decodes and validates those).
func (d *decoder) plainString() ([]byte, bool) {
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return d.b[start : d.i-1], true
		case c < 0x20 || c == '\\' || c >= 0x80:
			return nil, false
		}
		d.i++
	}
	return nil, false
}

// literal consumes lit if the body has it here, followed by a delimiter.
func (d *decoder) literal(lit string) bool {
	end := d.i + len(lit)
	if end > len(d.b) || string(d.b[d.i:end]) != lit || (end < len(d.b) && !delimiter(d.b[end])) {
		return false
	}
	d.i = end
	return true
}

// smallInt reads a JSON integer of at most four digits without sign,
// fraction or exponent; anything else is the slow path's.
func (d *decoder) smallInt() (int, bool) {
	n, start := 0, d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' && d.i-start < 4 {
		n = n*10 + int(d.b[d.i]-'0')
		d.i++
	}
	digits := d.i - start
	if digits == 0 || (digits > 1 && d.b[start] == '0') || (d.i < len(d.b) && !delimiter(d.b[d.i])) {
		return 0, false
	}
	return n, true
}

// delimiter reports whether c may follow a JSON number or literal in an
// object.
func delimiter(c byte) bool {
	return c == ',' || c == '}' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// fieldIndex returns the index of key in decideFields, -1 if none.
func fieldIndex(key []byte) int {
	for i, f := range decideFields {
		if string(key) == f {
			return i
		}
	}
	return -1
}

// channelOf returns c's channel named name, nil if none. A catalog has a
// handful of channels: comparing names is cheaper than hashing one.
func channelOf(c *rules.Catalog, name []byte) *rules.Channel {
	if len(c.Channels) > 8 {
		ch, _ := c.Channel(transient(name))
		return ch
	}
	for _, ch := range c.Channels {
		if ch.Name == string(name) {
			return ch
		}
	}
	return nil
}
