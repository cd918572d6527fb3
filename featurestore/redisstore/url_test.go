package redisstore

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestNewClientURLForms(t *testing.T) {
	tests := []struct {
		url      string
		wantType string
		wantErr  string
	}{
		{url: "redis://127.0.0.1:6379/0", wantType: "*redis.Client"},
		{url: "rediss://user:secret@127.0.0.1:6380/2?pool_size=5", wantType: "*redis.Client"},
		{url: "redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002", wantType: "*redis.ClusterClient"},
		{url: "redis+sentinel://:secret@127.0.0.1:26379,127.0.0.1:26380/mymaster/1", wantType: "*redis.Client"},
		{url: "http://127.0.0.1:6379", wantErr: "scheme must be"},
		{url: "redis://a:1,b:2", wantErr: "several hosts"},
		{url: "redis+sentinel://127.0.0.1:26379", wantErr: "master name"},
		{url: "redis://user:secret@127.0.0.1:6379?bogus=1", wantErr: "bogus"},
		{url: "redis+ring://127.0.0.1:1", wantErr: "unknown mode"},
	}
	for _, tt := range tests {
		c, err := NewClient(tt.url, ClientOptions{})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewClient(%q) error = %v, want it to contain %q", tt.url, err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("NewClient(%q) error leaks the password: %v", tt.url, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("NewClient(%q) error = %v", tt.url, err)
			continue
		}
		if got := typeName(c); got != tt.wantType {
			t.Errorf("NewClient(%q) = %s, want %s", tt.url, got, tt.wantType)
		}
		c.Close()
	}
}

func typeName(c redis.UniversalClient) string {
	switch c.(type) {
	case *redis.Client:
		return "*redis.Client"
	case *redis.ClusterClient:
		return "*redis.ClusterClient"
	}
	return "other"
}

func TestRedact(t *testing.T) {
	for _, in := range []string{"redis://u:secret@h:1/0", "redis+cluster://:secret@a:1,b:2", "redis://u:sec%ret@h:1", "::bad::u:secret@h"} {
		if got := Redact(in); strings.Contains(got, "secret") {
			t.Errorf("Redact(%q) = %q, leaks the password", in, got)
		}
	}
}
