package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nextbest/nextbest/internal/catalogs"
	"github.com/nextbest/nextbest/internal/keys"
)

// authFlags configure access control for serve.
type authFlags struct {
	Keys           string `name:"keys" env:"NEXTBEST_KEYS_FILE" help:"API keys file (YAML, written by nextbest keys create); env NEXTBEST_API_KEYS may hold the same YAML inline."`
	TokenSecret    string `name:"token-secret" env:"NEXTBEST_TOKEN_SECRET" help:"Secret of customer tokens, HMAC-SHA256(secret, customer_id), that public keys' requests carry; prefer the environment variable."`
	InsecureNoAuth bool   `name:"insecure-no-auth" env:"NEXTBEST_INSECURE_NO_AUTH" help:"Serve every route without API keys. For a laptop, never for a network."`
	ClientIPHeader string `name:"client-ip-header" env:"NEXTBEST_CLIENT_IP_HEADER" help:"Header in which the proxy in front puts the client's address (X-Real-IP, or X-Forwarded-For, whose last address is read), for the per-client limits of public keys; only behind a proxy that always sets it. Empty: the connection's address."`
}

// keyring loads the keys serve enforces: nil with --insecure-no-auth.
func (f *authFlags) keyring(e *env) (*keys.Keyring, error) {
	inline := e.getenv("NEXTBEST_API_KEYS")
	switch {
	case f.InsecureNoAuth && (f.Keys != "" || inline != ""):
		return nil, usagef("--insecure-no-auth and API keys (--keys or NEXTBEST_API_KEYS) exclude each other")
	case f.InsecureNoAuth:
		return nil, nil
	case f.Keys == "" && inline == "":
		return nil, usagef("no API keys: create one with `nextbest keys create --name NAME --scope decide,events` and pass --keys FILE, or run with --insecure-no-auth on a private machine")
	}
	var kr *keys.Keyring
	var err error
	if f.Keys != "" {
		var data []byte
		if data, err = os.ReadFile(f.Keys); err != nil {
			return nil, fmt.Errorf("--keys: %w", err)
		}
		kr, err = keys.Parse(f.Keys, data)
	} else {
		kr, err = keys.Parse("NEXTBEST_API_KEYS", []byte(inline))
	}
	if err != nil {
		return nil, err
	}
	if kr.HasPublic() && len(f.TokenSecret) < 16 {
		return nil, usagef("public keys need a customer token secret of at least 16 bytes: set NEXTBEST_TOKEN_SECRET (or --token-secret)")
	}
	return kr, nil
}

// keysCmd manages the API keys file.
type keysCmd struct {
	Create keysCreateCmd `cmd:"" help:"Create a key: print it once, store its hash in the keys file."`
	List   keysListCmd   `cmd:"" help:"List the keys of the keys file (names, scopes; never secrets)."`
	Revoke keysRevokeCmd `cmd:"" help:"Remove a key from the keys file."`
	Token  keysTokenCmd  `cmd:"" help:"Print the customer_token of a customer id, as a site's backend computes it."`
}

type keysFileFlags struct {
	File     string `name:"keys" default:"keys.yaml" env:"NEXTBEST_KEYS_FILE" help:"API keys file (created with mode 0600 if missing)."`
	Data     string `default:"./data" env:"NEXTBEST_DATA" help:"Data directory of the server the keys are for: key management is audited in its audit log."`
	AuditLog string `name:"audit-log" env:"NEXTBEST_AUDIT_LOG" help:"JSON-lines audit log that records key management (default: <data>/audit.log, the server's)."`
}

// auditPath is the audit log serve writes with the same --data and
// --audit-log.
func (f *keysFileFlags) auditPath() string {
	if f.AuditLog != "" {
		return f.AuditLog
	}
	return filepath.Join(f.Data, "audit.log")
}

type keysCreateCmd struct {
	keysFileFlags
	Name    string   `required:"" help:"Name of the key (who uses it: website, crm, ...)."`
	Scope   string   `required:"" help:"Comma-separated scopes: decide, events, profiles, admin."`
	Public  bool     `help:"A key for browsers and apps: decide and events only, customers proven by customer_token."`
	Origin  []string `help:"Browser origin a public key may be used from (repeatable), e.g. https://shop.example.com."`
	Rate    float64  `help:"Requests per second allowed (token bucket); 0: unlimited."`
	Burst   int      `help:"Burst of the rate limit (default: the rate)."`
	Created string   `hidden:"" help:"Creation time (tests)."`

	// Set only when given, so the keys file keeps the default's absence.
	ClientRate  *float64 `name:"client-rate" help:"Public keys: requests per second allowed to one client, the customer a customer_token proves or else the client's address (default 20; 0: no per-client limit)."`
	ClientBurst int      `name:"client-burst" help:"Public keys: burst of the per-client limit (default: the client rate)."`
}

// audit records a key management event in the audit log serve shares.
func audit(file string, e catalogs.AuditEvent) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	a, err := catalogs.OpenAudit(file)
	if err != nil {
		return err
	}
	if err := a.Record(e); err != nil {
		a.Close()
		return err
	}
	return a.Close()
}

func (c *keysCreateCmd) Run(_ context.Context, e *env) error {
	doc, err := keys.ReadFile(c.File)
	if err != nil {
		return err
	}
	for _, k := range doc.Keys {
		if k.Name == c.Name {
			return usagef("a key named %q is already in %s (revoke it first)", c.Name, c.File)
		}
	}
	scopes, err := keys.ParseScopes(c.Scope)
	if err != nil {
		return usagef("--scope: %v", err)
	}
	key := keys.Generate()
	created := c.Created
	if created == "" {
		created = time.Now().UTC().Format(time.RFC3339)
	}
	entry := keys.Entry{Name: c.Name, Hash: keys.Hash(key), Scopes: strings.Split(scopes.String(), ","),
		Public: c.Public, Origins: c.Origin, Rate: c.Rate, Burst: c.Burst, ClientRate: c.ClientRate, ClientBurst: c.ClientBurst, Created: created}
	doc.Keys = append(doc.Keys, entry)
	// Check the new file as serve will read it before writing it.
	if err := doc.Check(c.File); err != nil {
		return usageError{err}
	}
	if err := keys.WriteFile(c.File, doc); err != nil {
		return err
	}
	if err := audit(c.auditPath(), catalogs.AuditEvent{Actor: "cli", Action: "key.create", Subject: c.Name, Reason: "scopes " + scopes.String()}); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	fmt.Fprintf(e.stdout, "%s\n", key)
	fmt.Fprintf(e.stderr, "created key %q (%s) in %s; this is the only time it is shown: store it now\n", c.Name, scopes, c.File)
	return nil
}

type keysListCmd struct {
	keysFileFlags
}

func (c *keysListCmd) Run(_ context.Context, e *env) error {
	doc, err := keys.ReadFile(c.File)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSCOPES\tPUBLIC\tORIGINS\tRATE\tCREATED")
	for _, k := range doc.Keys {
		rate := "-"
		if k.Rate > 0 {
			rate = fmt.Sprintf("%g/s", k.Rate)
		}
		fmt.Fprintf(w, "%s\t%s\t%v\t%s\t%s\t%s\n", k.Name, strings.Join(k.Scopes, ","), k.Public, strings.Join(k.Origins, ","), rate, k.Created)
	}
	return w.Flush()
}

type keysRevokeCmd struct {
	keysFileFlags
	Name string `arg:"" help:"Name of the key to remove."`
}

func (c *keysRevokeCmd) Run(_ context.Context, e *env) error {
	doc, err := keys.ReadFile(c.File)
	if err != nil {
		return err
	}
	n := len(doc.Keys)
	doc.Keys = slices.DeleteFunc(doc.Keys, func(k keys.Entry) bool { return k.Name == c.Name })
	if len(doc.Keys) == n {
		return usagef("no key named %q in %s", c.Name, c.File)
	}
	if err := keys.WriteFile(c.File, doc); err != nil {
		return err
	}
	if err := audit(c.auditPath(), catalogs.AuditEvent{Actor: "cli", Action: "key.revoke", Subject: c.Name}); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	fmt.Fprintf(e.stderr, "revoked key %q; restart the servers using %s\n", c.Name, c.File)
	return nil
}

type keysTokenCmd struct {
	Customer    string `required:"" help:"Customer id to sign."`
	TokenSecret string `name:"token-secret" env:"NEXTBEST_TOKEN_SECRET" help:"The customer token secret."`
}

func (c *keysTokenCmd) Run(_ context.Context, e *env) error {
	if len(c.TokenSecret) < 16 {
		return usagef("the token secret must be at least 16 bytes: set NEXTBEST_TOKEN_SECRET")
	}
	fmt.Fprintln(e.stdout, keys.CustomerToken([]byte(c.TokenSecret), c.Customer))
	return nil
}
