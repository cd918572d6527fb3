package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// CustomerToken is what a brand's backend gives its web page or app to
// prove a customer id: hex(HMAC-SHA256(secret, customer_id)).
func CustomerToken(secret []byte, customerID string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(customerID))
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyCustomerToken reports whether token proves customerID, in
// constant time.
func VerifyCustomerToken(secret []byte, customerID, token []byte) bool {
	if len(secret) == 0 || len(token) != 2*sha256.Size {
		return false
	}
	var got [sha256.Size]byte
	if _, err := hex.Decode(got[:], token); err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(customerID)
	var want [sha256.Size]byte
	return hmac.Equal(got[:], m.Sum(want[:0]))
}
