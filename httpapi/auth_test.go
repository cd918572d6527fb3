package httpapi

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	hash := HashKey("nbk_test")
	tests := []struct {
		name, doc string
		want      string // a substring of the error; "" for success
	}{
		{"ok", "keys:\n  - {name: a, hash: " + hash + ", scopes: [decide, events]}\n", ""},
		{"public with origins", "keys:\n  - {name: web, hash: " + hash + ", scopes: [decide], public: true, origins: [https://shop.example.com, http://localhost:3000], rate: 5}\n", ""},
		{"empty", "", "no keys"},
		{"unknown field", "keys:\n  - {name: a, hash: " + hash + ", scopes: [decide], scope: x}\n", "field scope not found"},
		{"no name", "keys:\n  - {hash: " + hash + ", scopes: [decide]}\n", "name: required"},
		{"duplicate", "keys:\n  - {name: a, hash: " + hash + ", scopes: [decide]}\n  - {name: a, hash: " + hash + ", scopes: [decide]}\n", "declared twice"},
		{"bad hash", "keys:\n  - {name: a, hash: md5:abc, scopes: [decide]}\n", "hash: want sha256:"},
		{"no scopes", "keys:\n  - {name: a, hash: " + hash + "}\n", "scopes: at least one"},
		{"unknown scope", "keys:\n  - {name: a, hash: " + hash + ", scopes: [root]}\n", `scope "root" is not one of`},
		{"public admin", "keys:\n  - {name: a, hash: " + hash + ", scopes: [admin], public: true}\n", "public key may only have decide and events"},
		{"origins on a private key", "keys:\n  - {name: a, hash: " + hash + ", scopes: [decide], origins: [https://x.example]}\n", "only public keys"},
		{"wildcard origin", "keys:\n  - {name: a, hash: " + hash + ", scopes: [decide], public: true, origins: [\"*\"]}\n", "no wildcard"},
		{"origin with a path", "keys:\n  - {name: a, hash: " + hash + ", scopes: [decide], public: true, origins: [https://x.example/shop]}\n", "no path"},
		{"negative rate", "keys:\n  - {name: a, hash: " + hash + ", scopes: [decide], rate: -1}\n", "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := ParseKeys("keys.yaml", []byte(tt.doc))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "keys.yaml")):
				t.Fatalf("error %v, want one naming keys.yaml and containing %q", err, tt.want)
			case tt.want == "" && kr.lookup([]byte("nbk_test")) == nil:
				t.Fatal("the key is not found by its secret")
			}
		})
	}
}

func TestCustomerToken(t *testing.T) {
	secret := []byte("0123456789abcdef-secret")
	tok := CustomerToken(secret, "c-1")
	// The documented construction, independently: HMAC-SHA256 in hex.
	if len(tok) != 64 || strings.ToLower(tok) != tok {
		t.Fatalf("token %q is not 64 lowercase hex digits", tok)
	}
	for _, tt := range []struct {
		name       string
		secret, id []byte
		token      string
		want       bool
	}{
		{"valid", secret, []byte("c-1"), tok, true},
		{"upper-case hex", secret, []byte("c-1"), strings.ToUpper(tok), true},
		{"another customer", secret, []byte("c-2"), tok, false},
		{"another secret", []byte("another-secret-0123"), []byte("c-1"), tok, false},
		{"truncated", secret, []byte("c-1"), tok[:63], false},
		{"not hex", secret, []byte("c-1"), strings.Repeat("z", 64), false},
		{"no secret", nil, []byte("c-1"), tok, false},
		{"empty", secret, []byte("c-1"), "", false},
	} {
		if got := VerifyCustomerToken(tt.secret, tt.id, []byte(tt.token)); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// FuzzVerifyCustomerToken: verification never panics, accepts exactly the
// token made for the customer, and rejects any other byte string.
func FuzzVerifyCustomerToken(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), []byte("c-1"), []byte(CustomerToken([]byte("0123456789abcdef"), "c-1")))
	f.Add([]byte("s"), []byte(""), []byte("00"))
	f.Fuzz(func(t *testing.T, secret, id, token []byte) {
		got := VerifyCustomerToken(secret, id, token)
		want := len(secret) > 0 && bytes.EqualFold(token, []byte(CustomerToken(secret, string(id))))
		if got != want {
			t.Fatalf("VerifyCustomerToken(%q, %q, %q) = %v, want %v", secret, id, token, got, want)
		}
		if len(secret) > 0 && !VerifyCustomerToken(secret, id, []byte(CustomerToken(secret, string(id)))) {
			t.Fatal("the token made for the customer does not verify")
		}
	})
}

// FuzzParseKeys: a keys file, however broken, gives a keyring or an
// error naming the file, never a panic.
func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("keys:\n  - {name: a, hash: " + HashKey("k") + ", scopes: [decide], public: true, origins: [https://x.example], rate: 2}\n"))
	f.Add([]byte("keys: [{}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kr, err := ParseKeys("keys.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "keys.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if kr.Len() == 0 {
			t.Fatal("a keyring without keys")
		}
		kr.lookup([]byte("k"))
	})
}
