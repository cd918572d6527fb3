// Package jsonenc appends JSON strings and numbers to byte slices
// exactly as encoding/json writes them, without reflection or
// allocation: the shared leaf of the hand-written encoders of the HTTP
// responses (httpapi) and of the decision log (internal/decisionlog).
//
// Its functions are pure, safe for concurrent use, allocate nothing
// when the destination has room, and import only the standard library.
package jsonenc
