package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/featurestore/cache"
	"github.com/nextbest/nextbest/featurestore/embedded"
)

// The server's wiring: the cache in front of the embedded store. An event
// acknowledged by Mutate is in the very next Load.
func Example() {
	dir, err := os.MkdirTemp("", "nextbest-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	schema, err := featurestore.NewSchema([]featurestore.Feature{
		{Name: "tier", Type: featurestore.TypeString, Default: featurestore.String("none")},
		{Name: "cart_items", Type: featurestore.TypeNumber, From: &featurestore.Aggregation{Event: "cart_add", Op: featurestore.OpCount, ResetOn: []string{"purchase"}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	store, err := embedded.Open(embedded.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	records, err := cache.New(store, cache.Options{MaxCost: 64 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer records.Close() // before the store

	ctx := context.Background()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	if _, err := records.Load(ctx, "c-1"); errors.Is(err, featurestore.ErrNotFound) {
		fmt.Println("c-1 is unknown")
	}
	events := []featurestore.Event{
		{CustomerID: "c-1", Type: "cart_add", Channel: "web", Time: now},
		{CustomerID: "c-1", Type: "cart_add", Channel: "app", Time: now.Add(time.Minute)},
	}
	muts := append(featurestore.EventMutations(schema, events, now),
		featurestore.AttrsMutation("c-1", map[string]featurestore.Value{"tier": featurestore.String("gold")}))
	if _, err := records.Mutate(ctx, muts); err != nil {
		log.Fatal(err)
	}
	rec, err := records.Load(ctx, "c-1")
	if err != nil {
		log.Fatal(err)
	}
	for i, v := range rec.Features(schema, now, nil) {
		fmt.Printf("%s = %v\n", schema.Features()[i].Name, v)
	}
	// Output:
	// c-1 is unknown
	// tier = "gold"
	// cart_items = 2
}
