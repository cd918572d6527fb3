package decision

import "github.com/nextbest/nextbest/rules"

// Assignment is a customer's variant in one experiment.
type Assignment struct {
	Experiment *rules.Experiment
	Variant    *rules.Variant
}

// Assign appends to dst the variants of the experiments of c that the
// customer takes part in, in declaration order (the global holdout
// first), whatever their scope: the variant the customer gets whenever a
// decision is in an experiment's scope. It is how outcome events, which
// are not decisions, find the customer's variants. Assignment is a pure
// function of the experiment's salt and the customer id: the same
// customer gets the same variant on every channel, every node and every
// day, with nothing stored. A customer in the global holdout takes part
// in no other experiment. Anonymous requests (empty id) take part in
// none.
func Assign(dst []Assignment, c *rules.Catalog, customerID string) []Assignment {
	return assign(dst, c, customerID, nil, nil)
}

// assign is Assign for a decision on ch whose customer's segments env
// holds: only the experiments whose scope covers it. A nil ch takes
// every experiment, whatever its scope.
func assign(dst []Assignment, c *rules.Catalog, customerID string, ch *rules.Channel, env *rules.Env) []Assignment {
	if customerID == "" {
		return dst
	}
	for _, x := range c.Experiments {
		if ch != nil && x.Scoped() && !x.Covers(ch, env) {
			continue
		}
		v := variantOf(x, customerID)
		if v == nil {
			continue
		}
		dst = append(dst, Assignment{Experiment: x, Variant: v})
		if x.Global && v.Holdout {
			break // held out of every experiment too
		}
	}
	return dst
}

// variantOf returns the customer's variant of x, or nil when the customer
// falls outside the experiment's traffic. Two independent hashes decide
// membership and variant, so changing the traffic share does not move
// customers between variants.
func variantOf(x *rules.Experiment, customerID string) *rules.Variant {
	if unit(hash(x.Salt, "traffic", customerID)) >= x.Traffic {
		return nil
	}
	total := 0.0
	for _, v := range x.Variants {
		total += v.Weight
	}
	pick := unit(hash(x.Salt, "variant", customerID)) * total
	for _, v := range x.Variants {
		if pick < v.Weight {
			return v
		}
		pick -= v.Weight
	}
	// Rounding left pick at the top edge: the last variant with weight.
	for i := len(x.Variants) - 1; i >= 0; i-- {
		if x.Variants[i].Weight > 0 {
			return x.Variants[i]
		}
	}
	return nil
}

// hash is 64-bit FNV-1a of salt, purpose and id, separated by zero bytes,
// finished with a splitmix64 round so nearby ids spread over the range.
func hash(salt, purpose, id string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for _, s := range [...]string{salt, purpose, id} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime
		}
		h *= prime // the zero separator
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// unit maps h to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// holdoutOf names the experiment and variant that hold the customer out,
// "global_holdout/holdout", for explanations and withheld decisions.
func holdoutOf(as []Assignment) string {
	for _, a := range as {
		if a.Variant.Holdout {
			return a.Variant.Label()
		}
	}
	return ""
}
