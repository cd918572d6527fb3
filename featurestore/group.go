package featurestore

// Group is one customer's share of a call's mutations.
type Group struct {
	CustomerID string
	// Muts are the indexes of the customer's mutations in the call, in
	// order; never empty.
	Muts []int
}

// Last returns the index of the customer's last mutation in the call.
func (g *Group) Last() int { return g.Muts[len(g.Muts)-1] }

// GroupByCustomer returns the distinct customers of muts in order of
// first appearance, each with the indexes of its mutations. The groups'
// index slices share one array.
func GroupByCustomer(muts []Mutation) []Group {
	if len(muts) == 0 {
		return nil
	}
	which := make([]int, len(muts)) // group of each mutation
	groups := make([]Group, 0, 1)
	counts := make([]int, 0, 1) // mutations of each group
	var index map[string]int    // only for large calls; a scan is cheaper below
	if len(muts) > 16 {
		index = make(map[string]int, len(muts))
	}
	for i := range muts {
		id := muts[i].CustomerID
		g := -1
		if index != nil {
			if j, ok := index[id]; ok {
				g = j
			}
		} else {
			for j := range groups {
				if groups[j].CustomerID == id {
					g = j
					break
				}
			}
		}
		if g < 0 {
			g = len(groups)
			groups = append(groups, Group{CustomerID: id})
			counts = append(counts, 0)
			if index != nil {
				index[id] = g
			}
		}
		which[i] = g
		counts[g]++
	}
	if len(groups) == 1 {
		for i := range which {
			which[i] = i
		}
		groups[0].Muts = which
		return groups
	}
	// Lay the groups' indexes out one after the other in one array.
	idx := make([]int, len(muts))
	off := 0
	for j, n := range counts {
		groups[j].Muts = idx[off : off : off+n]
		off += n
	}
	for i, g := range which {
		groups[g].Muts = append(groups[g].Muts, i)
	}
	return groups
}
