package decision

import (
	"fmt"
	"strings"

	"github.com/nextbest/nextbest/featurestore"
	"github.com/nextbest/nextbest/rules"
)

// InSegment reports whether the customer whose features are f is in seg,
// as a decision of req would find: the catalog's segments are evaluated
// in declaration order up to seg (a segment may build on earlier ones),
// against req's channel, placement, context and time. A batch of
// decisions over a segment asks it of every customer scanned before
// deciding for those in it. A rule that fails at run time leaves the
// customer out, as in Decide.
func (e *Engine) InSegment(c *rules.Catalog, seg *rules.Segment, f featurestore.Vector, req *Request) (bool, error) {
	ch, ok := c.Channel(req.Channel)
	if !ok {
		return false, fmt.Errorf("%w: %q is not one of %s", ErrUnknownChannel, req.Channel, strings.Join(c.ChannelNames(), ", "))
	}
	if seg.Index >= len(c.Segments) || c.Segments[seg.Index] != seg {
		return false, fmt.Errorf("segment %q is not one of the catalog's", seg.Name)
	}
	s := e.scratch()
	defer e.release(s)
	s.bind(c, ch, f, req)
	env := &s.env
	for _, sg := range c.Segments[:seg.Index+1] {
		if in, _ := sg.Rule.Eval(env); in {
			if sg == seg {
				return true, nil
			}
			env.AddSegment(sg)
		}
	}
	return false, nil
}
