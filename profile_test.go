package nextbest

import (
	"context"
	"errors"
	"testing"

	"github.com/nextbest/nextbest/featurestore"
)

// TestProfile: an unknown customer has the schema's defaults, a profile
// update is read back, and a store failure is returned.
func TestProfile(t *testing.T) {
	s, store := newTestService(t, false, nil)
	ctx := context.Background()
	feature := func(p *Profile, name string) string {
		t.Helper()
		f, ok := p.Schema.Lookup(name)
		if !ok {
			t.Fatalf("no feature %q", name)
		}
		return p.Features[f.Index].String()
	}

	p, err := s.Profile(ctx, "nobody")
	if err != nil || p.Known || p.CustomerID != "nobody" || feature(p, "tier") != `"none"` {
		t.Fatalf("unknown customer: %+v, %v; want unknown with tier \"none\"", p, err)
	}
	if p, err = s.SetProfile(ctx, "vera", map[string]featurestore.Value{"tier": featurestore.String("gold")}); err != nil || !p.Known || feature(p, "tier") != `"gold"` {
		t.Fatalf("SetProfile: %+v, %v; want known with tier \"gold\"", p, err)
	}
	if p, err = s.Profile(ctx, "vera"); err != nil || !p.Known || feature(p, "tier") != `"gold"` {
		t.Errorf("Profile after SetProfile: %+v, %v; want known with tier \"gold\"", p, err)
	}

	store.err = errors.New("disk full")
	if _, err := s.Profile(ctx, "vera"); !errors.Is(err, store.err) {
		t.Errorf("Profile with the store down: got %v, want its error", err)
	}
	if _, err := s.SetProfile(ctx, "vera", nil); !errors.Is(err, store.err) {
		t.Errorf("SetProfile with the store down: got %v, want its error", err)
	}
}

// TestSetProfileTimeZone: the feature a channel's quiet hours read as the
// customer's time zone takes only zone names (or "" for none): anything
// else is a *RequestError naming the feature, and nothing is written.
func TestSetProfileTimeZone(t *testing.T) {
	s, store := newTestService(t, false, nil)
	ctx := context.Background()
	for _, tt := range []struct {
		zone string
		ok   bool
	}{
		{"Europe/Paris", true},
		{"", true},
		{"Europe/Pariss", false},
		{"Local", false},
	} {
		_, err := s.SetProfile(ctx, "zoe", map[string]featurestore.Value{"timezone": featurestore.String(tt.zone)})
		var re *RequestError
		switch {
		case tt.ok && err != nil:
			t.Errorf("zone %q: %v, want accepted", tt.zone, err)
		case !tt.ok && (!errors.As(err, &re) || re.Field != "features.timezone"):
			t.Errorf("zone %q: %v, want a *RequestError on features.timezone", tt.zone, err)
		}
	}
	if got := store.recs["zoe"].Attrs["timezone"]; got.Str != "" {
		t.Errorf("stored zone %q, want the last accepted one, \"\"", got.Str)
	}
}
