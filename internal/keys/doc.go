// Package keys is nextbest's API-key domain: the scopes a key may hold,
// the keys file an operator edits (nextbest keys create, list, revoke) and
// the keyring a server builds from it, key generation and hashing, and the
// customer tokens (HMAC-SHA256 of a customer id) that prove a customer to
// a public key's requests.
//
// Nothing here knows about HTTP: package httpapi reads the Authorization
// header and answers 401, 403 and 429; this package says which key a
// secret is, what it may do and whether its rate allows a request now. A
// key is known only by the SHA-256 of its secret, and every comparison of
// a secret or a token is in constant time. A *Keyring is immutable once
// Parse returns it and safe for concurrent use; the only state a Key
// changes is its token bucket, which is safe for concurrent use. The keys
// file belongs to the operator: ReadFile and WriteFile read and replace it
// whole, and nothing else writes it.
package keys
