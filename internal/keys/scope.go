package keys

import (
	"fmt"
	"slices"
	"strings"
)

// Scope is a set of permissions of an API key.
type Scope uint8

// Scopes.
const (
	ScopeDecide   Scope = 1 << iota // POST /v1/decide
	ScopeEvents                     // POST /v1/events
	ScopeProfiles                   // GET and PUT /v1/customers/{id}
	ScopeAdmin                      // catalog administration, stats, metrics
)

var scopeNames = []struct {
	s    Scope
	name string
}{{ScopeDecide, "decide"}, {ScopeEvents, "events"}, {ScopeProfiles, "profiles"}, {ScopeAdmin, "admin"}}

// publicScopes are all a public key may hold.
const publicScopes = ScopeDecide | ScopeEvents

// ParseScopes parses "decide,events".
func ParseScopes(s string) (Scope, error) {
	var sc Scope
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		i := slices.IndexFunc(scopeNames, func(x struct {
			s    Scope
			name string
		}) bool {
			return x.name == part
		})
		if i < 0 {
			return 0, fmt.Errorf("scope %q is not one of decide, events, profiles, admin", part)
		}
		sc |= scopeNames[i].s
	}
	return sc, nil
}

func (s Scope) String() string {
	var names []string
	for _, x := range scopeNames {
		if s&x.s != 0 {
			names = append(names, x.name)
		}
	}
	return strings.Join(names, ",")
}

// Public reports whether a public key may hold s (decide, events): the
// routes that need it are the ones a browser may call.
func (s Scope) Public() bool { return s != 0 && s&^publicScopes == 0 }
