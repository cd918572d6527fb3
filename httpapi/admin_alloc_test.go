//go:build !race

package httpapi

import (
	"strings"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/internal/catalogs"
)

// TestDecideAllocsVersioned: naming the catalog version in a decision
// costs no allocation, before and after an upload swapped the catalog.
func TestDecideAllocsVersioned(t *testing.T) {
	_, second, _ := adminCatalogs(t)
	fake := newFakeStore()
	reg, err := catalogs.Open(catalogs.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	if _, err := reg.Start("testdata/catalog.yaml"); err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, &cachingStore{fakeStore: fake}, func(o *testOptions) { o.Catalog, o.Admin = reg.Catalog(), reg })
	seed(t, s, fake, "carter", nil, featurestore.Event{Type: "cart_add"})
	h := s.Handler()
	for _, src := range [][]byte{nil, second} {
		if src != nil {
			if _, err := reg.Load(src, "test"); err != nil {
				t.Fatal(err)
			}
		}
		want := `"catalog_version":"` + reg.Active().ID + `"`
		ctx := decideCtx(`{"customer_id":"carter","channel":"web"}`)
		h(ctx)
		if body := string(ctx.Response.Body()); ctx.Response.StatusCode() != 200 || !strings.Contains(body, want) {
			t.Fatalf("got %d %s, want 200 with %s", ctx.Response.StatusCode(), body, want)
		}
		if got := testing.AllocsPerRun(1000, func() { again(h, ctx) }); got != 0 {
			t.Errorf("allocs per decision: got %v, want 0", got)
		}
		if body := string(ctx.Response.Body()); !strings.Contains(body, want) || strings.Contains(body, `"degraded":true`) {
			t.Errorf("last decision %s, want %s and not degraded", body, want)
		}
	}
}
