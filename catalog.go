package nextbest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// CatalogVersion is one version of the catalog, as the catalog registry
// (internal/catalogs) keeps it and the admin routes list it.
type CatalogVersion struct {
	// ID is CatalogVersionOf the catalog's source: the same source always
	// has the same version.
	ID string `json:"version"`
	// Time is when it was accepted and Actor who made it: an API key's
	// name, "file" for the watcher, "startup".
	Time  time.Time `json:"time"`
	Actor string    `json:"actor"`
	// Previous is the version in force when it was accepted.
	Previous string `json:"previous,omitempty"`
}

// CatalogVersionOf returns the version of a catalog source: the first 12
// hex digits of its SHA-256.
func CatalogVersionOf(src []byte) string {
	sum := sha256.Sum256(src)
	return hex.EncodeToString(sum[:6])
}

// ErrUnknownCatalogVersion is returned by a rollback to a version that is
// not kept.
var ErrUnknownCatalogVersion = errors.New("unknown catalog version")

// CatalogAdmin changes the catalog in force: what the catalog
// administration of any transport needs. *catalogs.Registry implements
// it.
type CatalogAdmin interface {
	// Load puts a catalog in force; one with problems returns rules.Errors.
	Load(src []byte, actor string) (CatalogVersion, error)
	// Validate compiles a catalog and returns its rules.Errors, or nil.
	Validate(src []byte) error
	// Rollback puts a version kept back in force; one not kept returns
	// ErrUnknownCatalogVersion.
	Rollback(version, actor string) (CatalogVersion, error)
	// Versions returns the versions kept, newest first.
	Versions() []CatalogVersion
	// Active returns the version in force.
	Active() CatalogVersion
}
