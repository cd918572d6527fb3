package rules

// A channel's policy: consent (eligible), a contact limit across its
// offers and quiet hours in the customer's time zone, which gate a
// channel's whole answer, fallback included. And the literals rules
// compare channel and placement with, which must name what the catalog
// declares.

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"go.yaml.in/yaml/v3"

	"github.com/nextbest/nextbest/featurestore"
)

// channelFields are the fields of a channel declared as a mapping.
var channelFields = []string{"name", "decision_is_impression", "eligible", "contact_limit", "quiet_hours", "content_escape"}

// policyNodes are the fields of a channel declared as a mapping, kept
// until its policy can be compiled.
type policyNodes struct {
	ch     *Channel
	fields map[string]*yaml.Node
}

// QuietHours are the hours of the day, in the customer's time zone, when a
// channel answers nothing: from From (inclusive) to To (exclusive), both
// in seconds after local midnight, over midnight when From > To.
type QuietHours struct {
	From, To int
	// Zone is the index in the schema of the string feature naming the
	// customer's IANA time zone; -1 when the channel names none. An empty
	// or unknown zone name reads as Default.
	Zone    int
	Default *time.Location
	// Rule names the quiet hours for explanations.
	Rule string

	zones *zoneCache
}

// Location returns the time zone the quiet hours are read in for a
// customer whose features are f (indexed by the catalog's schema).
func (q *QuietHours) Location(f featurestore.Vector) *time.Location {
	if q.Zone < 0 || q.Zone >= len(f) || f[q.Zone].Str == "" {
		return q.Default
	}
	if loc := q.zones.lookup(f[q.Zone].Str); loc != nil {
		return loc
	}
	return q.Default
}

// zoneCache memoises time zones by name, so a decision loads each zone
// (from the host's or the binary's embedded tzdata) once, and allocates
// nothing after. Names that name no zone are remembered too, up to
// maxZoneNames names in all, so a stored bad name costs one failed load.
type zoneCache struct {
	mu    sync.RWMutex
	zones map[string]*time.Location // nil: not a zone
}

// maxZoneNames bounds a zoneCache: the IANA database names about 600 zones.
const maxZoneNames = 2048

// zones is every catalog's zone cache: a zone's rules do not change while
// the process runs.
var zones = &zoneCache{zones: map[string]*time.Location{}}

// lookup returns the zone called name, or nil when there is none.
func (z *zoneCache) lookup(name string) *time.Location {
	z.mu.RLock()
	loc, ok := z.zones[name]
	z.mu.RUnlock()
	if ok {
		return loc
	}
	loc = loadZone(name)
	z.mu.Lock()
	if len(z.zones) < maxZoneNames {
		z.zones[strings.Clone(name)] = loc
	}
	z.mu.Unlock()
	return loc
}

// loadZone loads the IANA zone called name, or returns nil. "Local" and
// "" are not customers' zones: they would be the server's.
func loadZone(name string) *time.Location {
	if name == "" || name == "Local" {
		return nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil
	}
	return loc
}

// channelPolicies compiles the policy of each channel declared as a
// mapping: eligible, contact_limit and quiet_hours.
func (l *loader) channelPolicies(c *Catalog, comp *compiler) {
	for _, p := range l.policyNodes {
		ch, f := p.ch, p.fields
		obj := fmt.Sprintf("channel %q", ch.Name)
		if en := f["eligible"]; en != nil {
			ch.Eligible = l.rule(comp, en, obj, "eligible")
		}
		if n := f["contact_limit"]; n != nil {
			l.contactLimit(ch, n, obj)
		}
		if n := f["quiet_hours"]; n != nil {
			ch.Quiet = l.quietHours(c, n, obj)
		}
	}
	l.policyNodes = nil
}

// contactLimit reads contact_limit: {max: 2, within: 7d}.
func (l *loader) contactLimit(ch *Channel, n *yaml.Node, obj string) {
	f := l.fields(n, obj, "max", "within")
	cp := Cap{Max: int(l.number(f["max"], obj, "contact_limit.max", 0)), Channel: ch}
	switch {
	case f["max"] == nil:
		l.errorf(n, obj, "contact_limit.max", "is required (a whole number of impressions, at least 1)")
	case cp.Max < 1 || float64(cp.Max) != l.number(f["max"], obj, "contact_limit.max", 0):
		l.errorf(f["max"], obj, "contact_limit.max", "must be a whole number of impressions, at least 1")
		cp.Max = 0
	}
	cp.Within = l.duration(f["within"], n, obj, "contact_limit.within")
	if cp.Max < 1 || cp.Within <= 0 {
		return
	}
	ch.ContactLimit = cp
	ch.LimitRule = fmt.Sprintf("contact_limit: %d impressions within %s on %s", cp.Max, FormatDuration(cp.Within), ch.Name)
	if cp.Max == 1 {
		ch.LimitRule = fmt.Sprintf("contact_limit: 1 impression within %s on %s", FormatDuration(cp.Within), ch.Name)
	}
}

// quietHours reads quiet_hours: {from: "21:00", to: "09:00", timezone:
// customer.timezone, default_timezone: Asia/Tokyo}.
func (l *loader) quietHours(c *Catalog, n *yaml.Node, obj string) *QuietHours {
	f := l.fields(n, obj, "from", "to", "timezone", "default_timezone")
	q := &QuietHours{Zone: -1, Default: time.UTC, zones: zones}
	nerr := len(l.errs)
	var fromS, toS string
	for _, k := range []string{"from", "to"} {
		s, ok := l.str(f[k], obj, "quiet_hours."+k)
		if !ok {
			if f[k] == nil {
				l.errorf(n, obj, "quiet_hours."+k, `is required (a time of day like "21:00")`)
			}
			continue
		}
		sec, ok := clockSeconds(s)
		if !ok {
			l.errorf(f[k], obj, "quiet_hours."+k, `%q is not a time of day like "21:00" (hh:mm, 00:00 to 23:59)`, s)
			continue
		}
		if k == "from" {
			q.From, fromS = sec, s
		} else {
			q.To, toS = sec, s
		}
	}
	if len(l.errs) == nerr && q.From == q.To {
		l.errorf(f["to"], obj, "quiet_hours.to", "must differ from from (quiet hours of no or every hour are not quiet hours)")
	}
	zoneName := "UTC"
	if s, ok := l.str(f["default_timezone"], obj, "quiet_hours.default_timezone"); ok {
		if q.Default = loadZone(s); q.Default == nil {
			l.errorf(f["default_timezone"], obj, "quiet_hours.default_timezone", "%q is not a time zone (want an IANA name like Asia/Tokyo or UTC)", s)
			q.Default = time.UTC
		}
		zoneName = s
	}
	zone, broken := "", false
	if s, ok := l.str(f["timezone"], obj, "quiet_hours.timezone"); ok {
		name, isFeature := strings.CutPrefix(strings.TrimSpace(s), "customer.")
		feat, known := c.Schema.Lookup(name)
		switch {
		case !isFeature:
			l.errorf(f["timezone"], obj, "quiet_hours.timezone", "%q must name a string feature, like customer.timezone", s)
		case !known && slices.Contains(l.broken, name):
			broken = true // declared with an error of its own, already reported
		case !known:
			l.errorf(f["timezone"], obj, "quiet_hours.timezone", "unknown feature %s", name)
		case feat.Type != featurestore.TypeString:
			l.errorf(f["timezone"], obj, "quiet_hours.timezone", "feature %s is a %s, want a string (an IANA zone name)", name, feat.Type)
		default:
			q.Zone, zone = feat.Index, "customer."+name+", else "
		}
	}
	if len(l.errs) != nerr || broken {
		return nil
	}
	q.Rule = fmt.Sprintf("quiet_hours: %s to %s in %s%s", fromS, toS, zone, zoneName)
	return q
}

// clockSeconds parses a time of day "hh:mm" into seconds after midnight.
func clockSeconds(s string) (int, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, false
	}
	return t.Hour()*3600 + t.Minute()*60, true
}

// AttrError is a profile attribute the catalog refuses beyond its type:
// a time zone feature naming no zone.
type AttrError struct {
	Feature string
	Reason  string
}

func (e *AttrError) Error() string { return "features." + e.Feature + ": " + e.Reason }

// CheckAttrs checks profile attributes (already of their features'
// types) against what the catalog reads them as: a feature a channel's
// quiet hours read as the customer's time zone must be "" or an IANA zone
// name. The error is an *AttrError.
func (c *Catalog) CheckAttrs(attrs map[string]featurestore.Value) error {
	if len(attrs) == 0 {
		return nil
	}
	features := c.Schema.Features()
	for _, ch := range c.Channels {
		q := ch.Quiet
		if q == nil || q.Zone < 0 {
			continue
		}
		name := features[q.Zone].Name
		v, ok := attrs[name]
		if !ok || v.Str == "" {
			continue
		}
		if q.zones.lookup(v.Str) == nil {
			return &AttrError{Feature: name, Reason: fmt.Sprintf("%q is not a time zone (want an IANA name like Europe/Paris)", v.Str)}
		}
	}
	return nil
}

// placementLit is a literal a rule compares placement with, at its
// position in the expression.
type placementLit struct {
	value string
	at    exprError
}

// placementUse is a rule's placement literal, kept for checkPlacements.
type placementUse struct {
	n          *yaml.Node
	obj, field string
	src        string
	lit        placementLit
}

// literalChecker finds, in an expression as written, the literals channel
// and placement are compared with (==, !=, in a literal list).
type literalChecker struct {
	channels   map[string]*Channel
	unknown    string // the first channel literal that is not a channel
	loc        file.Location
	placements []placementLit
	src        string
}

func (k *literalChecker) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok {
		return
	}
	switch b.Operator {
	case "==", "!=":
		k.compare(b.Left, b.Right)
		k.compare(b.Right, b.Left)
	case "in":
		if arr, ok := b.Right.(*ast.ArrayNode); ok {
			for _, e := range arr.Nodes {
				k.compare(b.Left, e)
			}
		}
	}
}

// compare notes lit when id is channel or placement and lit a string.
func (k *literalChecker) compare(id, lit ast.Node) {
	i, ok := id.(*ast.IdentifierNode)
	if !ok {
		return
	}
	s, ok := lit.(*ast.StringNode)
	if !ok {
		return
	}
	switch i.Value {
	case "channel":
		if _, known := k.channels[s.Value]; !known && k.channels != nil && k.unknown == "" {
			k.unknown, k.loc = s.Value, s.Location()
		}
	case "placement":
		line, col := position(k.src, s.Location().From)
		k.placements = append(k.placements, placementLit{value: s.Value, at: exprError{line: line, column: col}})
	}
}

// literals returns the first channel literal of tree, as written, that
// is not a declared channel, and its placement literals.
func (c *compiler) literals(src string, tree ast.Node) (*exprError, []placementLit) {
	k := &literalChecker{channels: c.channels, src: src}
	ast.Walk(&tree, k)
	if k.unknown == "" {
		return nil, k.placements
	}
	line, col := position(src, k.loc.From)
	names := make([]string, 0, len(c.channels))
	for name := range c.channels {
		names = append(names, name)
	}
	slices.Sort(names)
	return &exprError{line: line, column: col, msg: fmt.Sprintf("channel %q is not one of %s", k.unknown, strings.Join(names, ", "))}, k.placements
}

// usePlacements keeps the placement literals of the expression src just
// compiled from n, for checkPlacements.
func (l *loader) usePlacements(comp *compiler, n *yaml.Node, obj, field, src string) {
	for _, p := range comp.placements {
		l.placementUses = append(l.placementUses, placementUse{n: n, obj: obj, field: field, src: src, lit: p})
	}
	comp.placements = nil
}

// checkPlacements reports each placement literal of a rule that no offer
// declares: a request with that placement could never match an offer
// that lists placements, so the literal is a typo or a forgotten offer.
func (l *loader) checkPlacements(c *Catalog) {
	if len(l.placementUses) == 0 {
		return
	}
	declared := map[string]bool{}
	for _, o := range c.Offers {
		for _, p := range o.Placements {
			declared[p] = true
		}
	}
	names := make([]string, 0, len(declared))
	for p := range declared {
		names = append(names, p)
	}
	slices.Sort(names)
	list := "none"
	if len(names) > 0 {
		list = strings.Join(names, ", ")
	}
	reported := map[*yaml.Node]bool{}
	for _, u := range l.placementUses {
		if declared[u.lit.value] || reported[u.n] {
			continue
		}
		reported[u.n] = true // one error per rule, as for segments
		e := u.lit.at
		e.msg = fmt.Sprintf("placement %q is not declared by any offer (placements: %s)", u.lit.value, list)
		l.exprError(u.n, u.obj, u.field, u.src, &e)
	}
	l.placementUses = nil
}
