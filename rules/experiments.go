package rules

// Experiments: variants that change arbitration or the offers a customer
// may get, assigned without stored state (decision/experiment.go).

import "go.yaml.in/yaml/v3"

// Experiment splits customers between variants, deterministically: a hash
// of Salt and the customer id picks, with no stored state, the same
// variant for a customer on every channel and every node.
type Experiment struct {
	ID       string
	Salt     string
	Traffic  float64 // share of customers in the experiment, (0, 1]
	Variants []*Variant
	Index    int
}

// Variant is one arm of an experiment.
type Variant struct {
	Name   string
	Weight float64
	// Holdout variants get no offers, only the channel's fallback content.
	Holdout bool
	// Arbitration replaces the catalog's for the variant's customers; nil
	// keeps it.
	Arbitration *Arbitration
	// Offers, when not nil, restricts the variant to these offers (by
	// Offer.Index).
	Offers []bool
}

// Allows reports whether the variant may present o.
func (v *Variant) Allows(o *Offer) bool {
	return v.Offers == nil || (o.Index < len(v.Offers) && v.Offers[o.Index])
}

// Experiment returns the experiment with the given id.
func (c *Catalog) Experiment(id string) (*Experiment, bool) {
	for _, x := range c.Experiments {
		if x.ID == id {
			return x, true
		}
	}
	return nil, false
}

// experiments reads experiments: [{id, salt, traffic, variants: [...]}].
func (l *loader) experiments(c *Catalog, comp *compiler, n *yaml.Node) {
	if n == nil {
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, "", "experiments", "must be a list of {id, salt, traffic, variants}")
		return
	}
	seen := map[string]bool{}
	for _, en := range n.Content {
		f := l.fields(en, "experiment", "id", "salt", "traffic", "variants")
		id, obj, ok := l.objectID(en, f["id"], "experiment")
		if !ok {
			continue
		}
		if seen[id] {
			l.errorf(f["id"], obj, "id", "duplicate experiment id")
			continue
		}
		seen[id] = true
		x := &Experiment{ID: id, Salt: id, Traffic: 1, Index: len(c.Experiments)}
		if s, ok := l.str(f["salt"], obj, "salt"); ok {
			x.Salt = s
		}
		x.Traffic = l.number(f["traffic"], obj, "traffic", 1)
		if !(x.Traffic > 0 && x.Traffic <= 1) {
			l.errorf(f["traffic"], obj, "traffic", "must be a share of customers in (0, 1]")
		}
		l.variants(c, comp, x, f["variants"], en, obj)
		c.Experiments = append(c.Experiments, x)
	}
}

func (l *loader) variants(c *Catalog, comp *compiler, x *Experiment, n, parent *yaml.Node, obj string) {
	if n == nil || n.Kind != yaml.SequenceNode || len(n.Content) < 2 {
		at := n
		if at == nil {
			at = parent
		}
		l.errorf(at, obj, "variants", "must be a list of at least two variants like {name: control, weight: 50}")
		return
	}
	names := map[string]bool{}
	total := 0.0
	for _, vn := range n.Content {
		f := l.fields(vn, obj, "name", "weight", "holdout", "arbitration", "offers")
		name, ok := l.str(f["name"], obj, "variants.name")
		if !ok {
			if f["name"] == nil {
				l.errorf(vn, obj, "variants.name", "is required")
			}
			continue
		}
		if !idRE.MatchString(name) || len(name) > maxIDLen {
			l.errorf(f["name"], obj, "variants.name", "must be letters, digits, and _ . : -")
			continue
		}
		if names[name] {
			l.errorf(f["name"], obj, "variants.name", "duplicate variant %q", name)
			continue
		}
		names[name] = true
		v := &Variant{Name: name, Weight: l.number(f["weight"], obj, "variants.weight", 1)}
		if !(v.Weight >= 0) || v.Weight > 1e9 {
			l.errorf(f["weight"], obj, "variants.weight", "must be a non-negative number")
			v.Weight = 0
		}
		total += v.Weight
		v.Holdout = l.boolean(f["holdout"], obj, "variants.holdout")
		v.Arbitration = l.arbitration(comp, f["arbitration"], obj, "variants.arbitration")
		if f["offers"] != nil {
			v.Offers = make([]bool, len(c.Offers))
			if f["offers"].Kind != yaml.SequenceNode {
				l.errorf(f["offers"], obj, "variants.offers", "must be a list of offer ids")
			} else {
				for _, on := range f["offers"].Content {
					id, ok := l.str(on, obj, "variants.offers")
					if !ok {
						continue
					}
					o, known := c.offers[id]
					if !known {
						l.errorf(on, obj, "variants.offers", "offer %q is not in the catalog", id)
						continue
					}
					v.Offers[o.Index] = true
				}
			}
		}
		if v.Holdout && (v.Arbitration != nil || v.Offers != nil) {
			l.errorf(vn, obj, "variants."+name, "a holdout gets no offers: arbitration and offers do not apply")
		}
		x.Variants = append(x.Variants, v)
	}
	if total <= 0 {
		l.errorf(n, obj, "variants", "weights must add up to more than 0")
	}
}
