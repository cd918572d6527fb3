package rules

import (
	"fmt"
	"os"
	"regexp"
	"slices"

	"github.com/expr-lang/expr/types"
	"go.yaml.in/yaml/v3"
)

// LoadFile reads and compiles the catalog at path. A catalog with
// problems returns Errors holding every one of them.
func LoadFile(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Load(path, data)
}

// Load compiles the YAML catalog in data; name is the file name errors
// carry. A catalog with problems returns Errors holding every one of them,
// in file order. It is Compile with the default Options.
func Load(name string, data []byte) (*Catalog, error) {
	return Compile(name, data, Options{})
}

// Compile is Load within the budget of opts (budget.go): a catalog over
// one of its limits returns Errors that name the limit, by how much it is
// over, and the flag that raises it.
func Compile(name string, data []byte, opts Options) (*Catalog, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &loader{file: name, opts: opts}
	c := l.load(data)
	if len(l.errs) > 0 {
		slices.SortStableFunc(l.errs, func(a, b *Error) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Column - b.Column
		})
		return nil, l.errs
	}
	return c, nil
}

var (
	identRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	idRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*$`)
	yamlErrRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// maxIDLen bounds ids and names, which travel in every response.
const maxIDLen = 128

type loader struct {
	file   string
	lines  []string // the file's lines, to place errors inside multi-line rules
	errs   Errors
	broken []string // features declared with errors; typed any so rules using them do not pile up errors
	noFast bool     // compile every rule for expr's VM only (tests)
	opts   Options  // the budget, with defaults applied
	// The channels declared as mappings, whose policy is compiled once
	// the features and segments it may read are (channelpolicy.go).
	policyNodes []policyNodes
	// Placement literals of the rules, checked against the placements the
	// offers declare once every offer is read (channelpolicy.go).
	placementUses []placementUse
	// The event types declared under events: (events.go).
	eventDecls map[string]*eventDecl
}

func (l *loader) load(data []byte) *Catalog {
	l.lines = splitLines(string(data))
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		l.errs = append(l.errs, l.syntaxError(data, err))
		return nil
	}
	if len(doc.Content) == 0 {
		l.errorf(nil, "", "", "empty catalog")
		return nil
	}
	root := l.fields(doc.Content[0], "", "channels", "features", "events", "segments", "offers", "defaults", "contact_policy", "learning", "arbitration", "experiments", "sticky", "groups", "holdout")
	c := &Catalog{File: l.file, channels: map[string]*Channel{}, offers: map[string]*Offer{}}
	if l.overCounts(root) {
		return nil
	}
	nerr := len(l.errs)
	l.channels(c, root["channels"])
	channelsOK := len(l.errs) == nerr && len(c.Channels) > 0
	switch {
	case root["channels"] == nil:
		l.errorf(doc.Content[0], "", "channels", "at least one channel is required")
	case len(c.Channels) == 0 && root["channels"].Kind == yaml.SequenceNode && len(root["channels"].Content) == 0:
		l.errorf(root["channels"], "", "channels", "at least one channel is required")
	}
	l.events(root["events"])
	schema := l.features(root["features"])
	if schema == nil {
		return nil
	}
	l.declareEvents(schema)
	c.Schema = schema
	c.Policy = l.contactPolicy(root["contact_policy"])
	c.Learning = l.learning(c, root["learning"])
	c.Sticky = l.sticky(root["sticky"], "")
	l.groups(c, root["groups"])
	comp := newCompiler(schema)
	comp.noFast = l.noFast
	if cust, ok := comp.env["customer"].(types.Map); ok {
		for _, name := range l.broken {
			cust[name] = types.Any
		}
	}
	if channelsOK {
		// Channel literals are checked against a channel list without
		// errors only: one mistake, one error.
		comp.channels = c.channels
	}
	l.segments(c, comp, root["segments"])
	if ln := root["learning"]; ln != nil && ln.Kind == yaml.MappingNode {
		for _, kv := range l.pairs(ln, "learning", "") {
			if kv[0].Value == "model" {
				c.Learning.Model = l.model(c, comp, kv[1])
			}
		}
	}
	l.channelPolicies(c, comp)
	l.offers(c, comp, root["offers"])
	l.defaults(c, root["defaults"])
	if a := l.arbitration(comp, root["arbitration"], "", "arbitration"); a != nil {
		c.Arbitration = *a
	}
	l.experiments(c, comp, root["experiments"])
	l.holdout(c, root["holdout"])
	l.checkPlacements(c)
	c.lookback = contactLookback(c)
	schema.ContactRetention = contactRetention(c)
	schema.OfferValues = make(map[string]float64, len(c.Offers))
	for _, o := range c.Offers {
		schema.OfferValues[o.ID] = o.Value
	}
	c.byChannel = make([][]*Offer, len(c.Channels))
	for _, o := range c.Offers {
		c.maxSticky = max(c.maxSticky, o.Sticky)
		for _, ch := range o.Channels {
			c.byChannel[ch.Index] = append(c.byChannel[ch.Index], o)
		}
	}
	c.index(comp.conds)
	l.overBudget(c)
	return c
}

// objectID reads the id of an object of kind (offer, experiment) declared
// at n: required, with the id syntax. obj names the object in errors.
func (l *loader) objectID(n, idNode *yaml.Node, kind string) (id, obj string, ok bool) {
	id, ok = l.str(idNode, kind, "id")
	if !ok {
		if idNode == nil {
			l.errorf(n, kind, "id", "is required")
		}
		return "", "", false
	}
	obj = fmt.Sprintf("%s %q", kind, id)
	if !idRE.MatchString(id) || len(id) > maxIDLen {
		l.errorf(idNode, obj, "id", "must be letters, digits, and _ . : - (at most %d)", maxIDLen)
		return "", "", false
	}
	return id, obj, true
}
