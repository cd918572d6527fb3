package httpapi

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/rs/xid"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// Decision is one decide response, ready to be encoded.
type Decision struct {
	ID         xid.ID // unique and sortable by time
	CustomerID string
	Catalog    string // the version of the catalog that made it; "" for none
	Result     *decision.Result
	Explain    bool        // encode the segments and the explanation
	Degraded   Degradation // why the features were not read from the store, if they were not
}

// AppendDecision appends d as the JSON body of a POST /v1/decide response
// to dst and returns the extended buffer. Offers' content is copied
// verbatim: the JSON the catalog encoded at load, or for content with
// templates the service's rendering of it for the customer. It allocates
// nothing when dst has room.
func AppendDecision(dst []byte, d *Decision) []byte {
	res := d.Result
	dst = append(dst, `{"decision_id":"`...)
	n := len(dst)
	dst = append(dst, "00000000000000000000"...) // room for the 20-byte id
	d.ID.Encode(dst[n:])
	dst = append(dst, `","customer_id":`...)
	dst = appendString(dst, d.CustomerID)
	dst = append(dst, `,"channel":`...)
	if res.Channel != nil {
		dst = appendString(dst, res.Channel.Name)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"catalog_version":`...)
	if d.Catalog != "" {
		dst = appendString(dst, d.Catalog)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"offers":[`...)
	for i := range res.Offers {
		c := &res.Offers[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"id":`...)
		dst = appendString(dst, c.Offer.ID)
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, c.Offer.Name)
		dst = append(dst, `,"score":`...)
		dst = appendNumber(dst, c.Score)
		dst = append(dst, `,"content":`...)
		dst = appendContent(dst, c.Content)
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if len(res.Offers) == 0 {
		dst = append(dst, `,"fallback":`...)
		dst = appendContent(dst, res.Fallback)
	}
	if sp := &res.Suppressed; sp.Reason != "" {
		dst = append(dst, `,"suppressed":{"reason":`...)
		dst = appendString(dst, string(sp.Reason))
		dst = append(dst, `,"rule":`...)
		dst = appendString(dst, sp.Rule)
		if sp.Error != "" {
			dst = append(dst, `,"error":`...)
			dst = appendString(dst, sp.Error)
		}
		dst = append(dst, '}')
	}
	if !res.NextAllowedAt.IsZero() {
		dst = append(dst, `,"next_allowed_at":"`...)
		dst = res.NextAllowedAt.AppendFormat(dst, time.RFC3339)
		dst = append(dst, '"')
	}
	if len(res.Assignments) > 0 {
		dst = append(dst, `,"experiments":[`...)
		for i, a := range res.Assignments {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"id":`...)
			dst = appendString(dst, a.Experiment.ID)
			dst = append(dst, `,"variant":`...)
			dst = appendString(dst, a.Variant.Name)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if d.Degraded != NotDegraded {
		dst = append(dst, `,"degraded":true,"reason":"`...)
		dst = append(dst, d.Degraded.String()...)
		dst = append(dst, '"')
	} else {
		dst = append(dst, `,"degraded":false`...)
	}
	if d.Explain {
		dst = append(dst, `,"segments":[`...)
		for i, s := range res.Segments {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, s)
		}
		dst = append(dst, `],"explain":[`...)
		for i := range res.Explain {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendExplanation(dst, &res.Explain[i])
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

func appendExplanation(dst []byte, x *decision.Explanation) []byte {
	dst = append(dst, `{"offer_id":`...)
	dst = appendString(dst, x.OfferID)
	dst = append(dst, `,"eligible":`...)
	dst = strconv.AppendBool(dst, x.Eligible)
	dst = append(dst, `,"reason":`...)
	if x.Reason == decision.Chosen {
		dst = append(dst, `"chosen"`...)
	} else {
		dst = appendString(dst, string(x.Reason))
	}
	if x.Rule != "" {
		dst = append(dst, `,"rule":`...)
		dst = appendString(dst, x.Rule)
	}
	if x.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = appendString(dst, x.Error)
	}
	if x.Eligible {
		dst = append(dst, `,"score":`...)
		dst = appendNumber(dst, x.Score)
		dst = append(dst, `,"propensity":`...)
		dst = appendNumber(dst, x.Propensity)
		dst = append(dst, `,"value":`...)
		dst = appendNumber(dst, x.Value)
		dst = append(dst, `,"weight":`...)
		dst = appendNumber(dst, x.Weight)
		if x.Sticky {
			dst = append(dst, `,"sticky":true`...)
		}
		if x.Exploring {
			dst = append(dst, `,"exploring":true`...)
		}
	}
	return append(dst, '}')
}

func appendContent(dst []byte, c *rules.Content) []byte {
	if c == nil || len(c.JSON) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, c.JSON...)
}

// AppendCustomer appends the JSON body of a GET /v1/customers/{id}
// response: every feature of schema with its value in f (indexed by the
// schema), times as RFC 3339 strings or null, lists never null. known says
// whether the store holds a record for the customer.
func AppendCustomer(dst []byte, id string, known bool, schema *featurestore.Schema, f featurestore.Vector) []byte {
	dst = append(dst, `{"customer_id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"known":`...)
	dst = strconv.AppendBool(dst, known)
	dst = append(dst, `,"features":{`...)
	for i, feat := range schema.Features() {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, feat.Name)
		dst = append(dst, ':')
		v := feat.Default
		if i < len(f) {
			v = f[i]
		}
		dst = appendValue(dst, v)
	}
	return append(dst, "}}"...)
}

func appendValue(dst []byte, v featurestore.Value) []byte {
	switch v.Kind {
	case featurestore.TypeNumber:
		return appendNumber(dst, v.Num)
	case featurestore.TypeString:
		return appendString(dst, v.Str)
	case featurestore.TypeBool:
		return strconv.AppendBool(dst, v.AsBool())
	case featurestore.TypeTime:
		if v.Int == 0 {
			return append(dst, "null"...)
		}
		dst = append(dst, '"')
		dst = v.AsTime().AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"')
	case featurestore.TypeList:
		dst = append(dst, '[')
		for i, s := range v.List {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, s)
		}
		return append(dst, ']')
	}
	return append(dst, "null"...)
}

// appendNumber appends f as encoding/json would: integers without a
// fraction, no exponent below 1e21. JSON has no NaN or infinity, so those
// become null.
func appendNumber(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.AppendFloat(dst, f, 'e', -1, 64)
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Control characters are escaped,
// and invalid UTF-8 becomes U+FFFD, as encoding/json does, so the output
// is always valid JSON.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
