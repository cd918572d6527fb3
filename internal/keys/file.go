package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// File is the YAML form of a keyring (see Parse).
type File struct {
	Keys []Entry `yaml:"keys"`
}

// Entry is one key of a File.
type Entry struct {
	Name    string   `yaml:"name"`
	Hash    string   `yaml:"hash"`
	Scopes  []string `yaml:"scopes"`
	Public  bool     `yaml:"public,omitempty"`
	Origins []string `yaml:"origins,omitempty"`
	Rate    float64  `yaml:"rate,omitempty"`
	Burst   int      `yaml:"burst,omitempty"`
	// ClientRate is nil when the file does not set it: a public key then
	// gets DefaultClientRate; 0 turns the per-client limit off.
	ClientRate    *float64 `yaml:"client_rate,omitempty"`
	ClientBurst   int      `yaml:"client_burst,omitempty"`
	ClientBuckets int      `yaml:"client_buckets,omitempty"`
	Created       string   `yaml:"created,omitempty"`
}

// Per-client limits of a public key when its entry sets none.
const (
	// DefaultClientRate is the requests per second one client of a public
	// key may make: well above what a page or an app makes for one person
	// (a few decisions and events per view), well below a site's rate.
	DefaultClientRate = 20
	// DefaultClientBuckets bounds the clients whose buckets a public key
	// remembers, least recently seen first out: about 15 MiB (240 bytes a
	// bucket with short ids, measured; up to twice that with 256-byte
	// ids). A bucket forgotten is one refilled, so the bound needs to hold
	// the clients seen within a burst's refill time
	// (client_burst/client_rate, a second by default), not all clients.
	DefaultClientBuckets = 1 << 16
)

// Prefix starts every key nextbest generates, so a leaked one is easy to
// recognise (secret scanners, logs).
const Prefix = "nbk_"

// Generate returns a new random key: Prefix and 32 random bytes in
// unpadded base64url.
func Generate() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Hash is the stored form of a key: "sha256:" and the hex digest.
func Hash(key string) string {
	h := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(h[:])
}

// ReadFile reads the keys file name, checked as a server would read it; a
// file that does not exist reads as one without keys.
func ReadFile(name string) (*File, error) {
	var doc File
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return &doc, nil
	}
	if err != nil {
		return nil, err
	}
	if len(data) > 0 {
		if _, err := Parse(name, data); err != nil {
			return nil, err
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return &doc, nil
}

// Check reports what a server reading f from the file name would reject.
func (f *File) Check(name string) error {
	data, err := yaml.Marshal(f)
	if err != nil {
		return err
	}
	_, err = Parse(name, data)
	return err
}

// WriteFile replaces the keys file name with f atomically (temporary
// file, rename), mode 0600, making its directory (0700) if need be.
func WriteFile(name string, f *File) error {
	out, err := yaml.Marshal(f)
	if err != nil {
		return err
	}
	out = append([]byte("# nextbest API keys: hashes only; the keys themselves were shown once.\n"), out...)
	if dir := filepath.Dir(name); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
