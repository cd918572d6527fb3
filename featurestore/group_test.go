package featurestore_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nextbest/nextbest/featurestore"
)

func TestGroupByCustomer(t *testing.T) {
	many := make([]string, 40) // past the size where a map indexes the groups
	var manyWant []featurestore.Group
	for i := range many {
		many[i] = fmt.Sprintf("c-%d", i%20)
		if i < 20 {
			manyWant = append(manyWant, featurestore.Group{CustomerID: many[i], Muts: []int{i, i + 20}})
		}
	}
	tests := []struct {
		name string
		ids  []string
		want []featurestore.Group
	}{
		{"none", nil, nil},
		{"one", []string{"a"}, []featurestore.Group{{"a", []int{0}}}},
		{"one customer", []string{"a", "a", "a"}, []featurestore.Group{{"a", []int{0, 1, 2}}}},
		{"order of first appearance", []string{"b", "a", "b", "c", "a"},
			[]featurestore.Group{{"b", []int{0, 2}}, {"a", []int{1, 4}}, {"c", []int{3}}}},
		{"empty id is a customer", []string{"", "a", ""}, []featurestore.Group{{"", []int{0, 2}}, {"a", []int{1}}}},
		{"many", many, manyWant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			muts := make([]featurestore.Mutation, len(tt.ids))
			for i, id := range tt.ids {
				muts[i].CustomerID = id
			}
			got := featurestore.GroupByCustomer(muts)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
			for _, g := range got {
				if last := g.Muts[len(g.Muts)-1]; g.Last() != last {
					t.Errorf("%q: Last() = %d, want %d", g.CustomerID, g.Last(), last)
				}
			}
		})
	}
}

func TestLocksStripes(t *testing.T) {
	l := featurestore.NewLocks()
	groups := make([]featurestore.Group, 2000)
	for i := range groups {
		groups[i].CustomerID = fmt.Sprintf("c-%d", i)
	}
	stripes := l.Stripes(groups)
	for i, s := range stripes {
		if s < 0 || s >= featurestore.LockStripes {
			t.Fatalf("stripe %d out of range", s)
		}
		if i > 0 && stripes[i-1] >= s {
			t.Fatalf("stripes not ascending and distinct: %d then %d", stripes[i-1], s)
		}
	}
	// 2000 customers cover almost every one of 512 stripes; half is a
	// bound no seed misses.
	if len(stripes) < featurestore.LockStripes/2 {
		t.Errorf("2000 customers on %d stripes, want most of %d", len(stripes), featurestore.LockStripes)
	}
	if got, want := l.Stripes(groups[:1]), []int{l.Stripe("c-0")}; !cmp.Equal(got, want) {
		t.Errorf("Stripes of one customer: got %v, want %v", got, want)
	}
	// Every mutex of a call is taken and released: a second call can take them.
	l.Lock(stripes)
	if l.TryLockOne(stripes[0]) {
		t.Error("TryLockOne took a held mutex")
	}
	l.Unlock(stripes)
	l.Lock(stripes)
	l.Unlock(stripes)
}
