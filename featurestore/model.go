package featurestore

import (
	"strconv"
	"strings"
)

// A learning model's sums (rules.Model) live in the all-time learning
// cells of their offer and channel, one cell per entry, its sum in
// Counts.Value: the stores add them as they add counts, so nodes share a
// model as they share counts. What tells a model's cell from a learn
// key's is its Key, which starts with modelPrefix; LearnKey never
// returns such a key.

// modelPrefix starts the key of every model cell.
const modelPrefix = "\x00model:"

// ModelKey is the learn key of one entry of the sums of the model whose
// terms' signature is sig: kind 'a', entry (i, j), i ≤ j, of Σx·xᵀ over
// impressions; kind 'b', entry i of Σx over successes.
func ModelKey(sig string, kind byte, i, j int) string {
	var b strings.Builder
	b.WriteString(modelPrefix)
	b.WriteString(sig)
	b.WriteByte(':')
	b.WriteByte(kind)
	b.WriteString(strconv.Itoa(i))
	if kind == 'a' {
		b.WriteByte(',')
		b.WriteString(strconv.Itoa(j))
	}
	return b.String()
}

// ModelTotalKey is the learn key of the cell that counts the outcomes of
// an offer under the model whose signature is sig, whatever the
// customer's learn key: an ordinary cell of counts (not sums), which the
// exploration floor of a catalog with a model reads.
func ModelTotalKey(sig string) string { return modelPrefix + sig + ":n" }

// IsModelKey reports whether a learning cell's key is a model's: one of
// its sums or its total.
func IsModelKey(key string) bool { return strings.HasPrefix(key, modelPrefix) }

// isModelSum reports whether key is of a cell of a model's sums (ModelKey),
// not of its total.
func isModelSum(key string) bool { return IsModelKey(key) && !strings.HasSuffix(key, ":n") }

// maxModelDim bounds the terms a model cell may name, well above
// rules.MaxModelTerms: a key beyond it is not a model's.
const maxModelDim = 64

// parseModelKey reverses ModelKey.
func parseModelKey(key string) (sig string, kind byte, i, j int, ok bool) {
	rest, found := strings.CutPrefix(key, modelPrefix)
	if !found {
		return "", 0, 0, 0, false
	}
	k := strings.LastIndexByte(rest, ':')
	if k < 0 || k+2 > len(rest) {
		return "", 0, 0, 0, false
	}
	sig, kind, rest = rest[:k], rest[k+1], rest[k+2:]
	var err error
	switch kind {
	case 'a':
		a, b, cut := strings.Cut(rest, ",")
		if !cut {
			return "", 0, 0, 0, false
		}
		if i, err = strconv.Atoi(a); err != nil {
			return "", 0, 0, 0, false
		}
		if j, err = strconv.Atoi(b); err != nil || j < i {
			return "", 0, 0, 0, false
		}
	case 'b':
		if i, err = strconv.Atoi(rest); err != nil {
			return "", 0, 0, 0, false
		}
	default:
		return "", 0, 0, 0, false
	}
	if i < 0 || i >= maxModelDim || j < 0 || j >= maxModelDim {
		return "", 0, 0, 0, false
	}
	return sig, kind, i, j, true
}

// ModelCell names the sums of one model of one offer on one channel.
type ModelCell struct{ Offer, Channel, Sig string }

// ModelSums are a model's sums: A = Σx·xᵀ over the offer's impressions
// (Dim × Dim, symmetric, row-major) and B = Σx over its successes.
type ModelSums struct {
	Dim  int
	A, B []float64
}

// grow makes s at least d terms wide, keeping its entries.
func (s *ModelSums) grow(d int) {
	if d <= s.Dim {
		return
	}
	a := make([]float64, d*d)
	for i := range s.Dim {
		copy(a[i*d:i*d+s.Dim], s.A[i*s.Dim:(i+1)*s.Dim])
	}
	b := make([]float64, d)
	copy(b, s.B)
	s.Dim, s.A, s.B = d, a, b
}

// addModelCell adds one model cell's sum to models.
func addModelCell(models map[ModelCell]*ModelSums, k StatKey, v float64) {
	sig, kind, i, j, ok := parseModelKey(k.Key)
	if !ok {
		return
	}
	mc := ModelCell{Offer: k.Offer, Channel: k.Channel, Sig: sig}
	s := models[mc]
	if s == nil {
		s = &ModelSums{}
		models[mc] = s
	}
	s.grow(max(i, j) + 1)
	d := s.Dim
	if kind == 'b' {
		s.B[i] += v
		return
	}
	s.A[i*d+j] += v
	if i != j {
		s.A[j*d+i] += v
	}
}

// Model returns the sums of a model of an offer on a channel, nil when it
// has none. The sums are the table's when it was built: a node's own
// outcomes reach a model at the next rebuild, not at Add.
func (t *LearnTable) Model(offer, channel, sig string) *ModelSums {
	if t == nil {
		return nil
	}
	return t.models[ModelCell{Offer: offer, Channel: channel, Sig: sig}]
}
