package redisstore

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Watch follows the invalidation channel until ctx ends. For every
// customer another node changed it calls drop(id). Each time the
// subscription is (re)established it calls reset(): messages published
// while it was down are lost, so every cached record may be stale.
// Reconnection is go-redis's, with its back-off.
func (s *Store) Watch(ctx context.Context, drop func(id string), reset func()) error {
	ps := s.c.Subscribe(ctx, s.channel)
	defer ps.Close()
	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(4096))
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					reset()
				}
			case *redis.Message:
				node, id, found := strings.Cut(m.Payload, "|")
				if found && node != s.node {
					drop(id)
				}
			}
		}
	}
}
