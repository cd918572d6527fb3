package rules

// Listing is what a decision reads of one offer listed for a channel once
// the offer is screened in. A catalog keeps each channel's listings in one
// array, in OffersFor's order (Catalog.Listings), so that judging and
// scoring the offers a customer may get reads consecutive memory rather
// than each Offer, its content and its placements wherever they lie on the
// heap: with 5,000 offers, reading the eligible offers' structs was 18% of
// a decision (docs/benchmarks.md, issue 12).
type Listing struct {
	Offer   *Offer
	Content *Content // the offer's content for the channel
	Value   float64  // Offer.Value
	Weight  float64  // Offer.Weight
	Prior   Prior    // Offer.Prior
	// Placed: the offer lists placements, so Offer.InPlacement decides;
	// otherwise it may appear in any.
	Placed bool
	// Scheduled: the offer has a start or an end, so Offer.Active
	// decides; otherwise it is always active.
	Scheduled bool
	// Planned: Screen judges the offer's eligible rule (Offer.Planned).
	Planned bool
}

// Listings returns the listings of the offers listed for ch, by position
// (OffersFor's order; ScreenPositions answers with these positions). The
// caller must not modify the slice.
func (c *Catalog) Listings(ch *Channel) []Listing { return c.screens[ch.Index].listings }

// listings builds the listings of offers, those listed for ch. It runs
// once the offers' rules are planned.
func listings(ch *Channel, offers []*Offer) []Listing {
	ls := make([]Listing, len(offers))
	for pos, o := range offers {
		ls[pos] = o.Listing(ch)
	}
	return ls
}

// Listing returns o's listing for ch, as Listings holds it; for callers
// that judge offers one by one (an explained decision).
func (o *Offer) Listing(ch *Channel) Listing {
	return Listing{
		Offer:     o,
		Content:   o.Content(ch),
		Value:     o.Value,
		Weight:    o.Weight,
		Prior:     o.Prior,
		Placed:    len(o.Placements) > 0,
		Scheduled: !o.Start.IsZero() || !o.End.IsZero(),
		Planned:   o.planned,
	}
}
