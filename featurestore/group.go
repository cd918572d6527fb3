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
	n := len(muts)
	if n == 0 {
		return nil
	}
	// One array: the group of each mutation, then the groups' indexes,
	// whose head counts each group's mutations until they are laid out.
	buf := make([]int, 2*n)
	which, idx := buf[:n], buf[n:]
	groups := make([]Group, 0, 1)
	var index map[string]int // only for large calls; a scan is cheaper below
	if n > 16 {
		index = make(map[string]int, n)
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
			if index != nil {
				index[id] = g
			}
		}
		which[i] = g
		idx[g]++
	}
	off := 0
	for j := range groups {
		c := idx[j]
		groups[j].Muts = idx[off : off : off+c]
		off += c
	}
	for i, g := range which { // overwrites the counts, all read above
		groups[g].Muts = append(groups[g].Muts, i)
	}
	return groups
}
