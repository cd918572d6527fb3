package httpapi

import (
	"strconv"
	"time"

	"github.com/rs/xid"

	"github.com/nextbest/nextbest/decision"
	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/jsonenc"
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
	dst = jsonenc.AppendString(dst, d.CustomerID)
	dst = append(dst, `,"channel":`...)
	if res.Channel != nil {
		dst = jsonenc.AppendString(dst, res.Channel.Name)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"catalog_version":`...)
	if d.Catalog != "" {
		dst = jsonenc.AppendString(dst, d.Catalog)
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
		dst = jsonenc.AppendString(dst, c.Offer.ID)
		dst = append(dst, `,"name":`...)
		dst = jsonenc.AppendString(dst, c.Offer.Name)
		dst = append(dst, `,"score":`...)
		dst = jsonenc.AppendFloat(dst, c.Score)
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
		dst = jsonenc.AppendString(dst, string(sp.Reason))
		dst = append(dst, `,"rule":`...)
		dst = jsonenc.AppendString(dst, sp.Rule)
		if sp.Error != "" {
			dst = append(dst, `,"error":`...)
			dst = jsonenc.AppendString(dst, sp.Error)
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
			dst = jsonenc.AppendString(dst, a.Experiment.ID)
			dst = append(dst, `,"variant":`...)
			dst = jsonenc.AppendString(dst, a.Variant.Name)
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
			dst = jsonenc.AppendString(dst, s)
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
	dst = jsonenc.AppendString(dst, x.OfferID)
	dst = append(dst, `,"eligible":`...)
	dst = strconv.AppendBool(dst, x.Eligible)
	dst = append(dst, `,"reason":`...)
	if x.Reason == decision.Chosen {
		dst = append(dst, `"chosen"`...)
	} else {
		dst = jsonenc.AppendString(dst, string(x.Reason))
	}
	if x.Rule != "" {
		dst = append(dst, `,"rule":`...)
		dst = jsonenc.AppendString(dst, x.Rule)
	}
	if x.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = jsonenc.AppendString(dst, x.Error)
	}
	if x.Eligible {
		dst = append(dst, `,"score":`...)
		dst = jsonenc.AppendFloat(dst, x.Score)
		dst = append(dst, `,"propensity":`...)
		dst = jsonenc.AppendFloat(dst, x.Propensity)
		dst = append(dst, `,"value":`...)
		dst = jsonenc.AppendFloat(dst, x.Value)
		dst = append(dst, `,"weight":`...)
		dst = jsonenc.AppendFloat(dst, x.Weight)
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
	dst = jsonenc.AppendString(dst, id)
	dst = append(dst, `,"known":`...)
	dst = strconv.AppendBool(dst, known)
	dst = append(dst, `,"features":{`...)
	for i, feat := range schema.Features() {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonenc.AppendString(dst, feat.Name)
		dst = append(dst, ':')
		v := feat.Default
		if i < len(f) {
			v = f[i]
		}
		dst = v.AppendJSON(dst)
	}
	return append(dst, "}}"...)
}
