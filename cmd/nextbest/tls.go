package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// tlsFlags make serve speak HTTPS. The certificate is read once, at start:
// to rotate it, restart (a rolling restart behind a load balancer, or
// SIGTERM's graceful shutdown).
type tlsFlags struct {
	TLSCert string `name:"tls-cert" env:"NEXTBEST_TLS_CERT" help:"PEM certificate (chain, leaf first) to serve HTTPS with, with --tls-key; plain HTTP when neither is set."`
	TLSKey  string `name:"tls-key" env:"NEXTBEST_TLS_KEY" help:"PEM private key of --tls-cert."`

	cert *tls.Certificate // loaded by validate; nil for plain HTTP
}

// validate loads the certificate and key, so a bad pair stops serve
// before it listens, with an error naming the flag and the file.
func (f *tlsFlags) validate() error {
	if f.TLSCert == "" && f.TLSKey == "" {
		return nil
	}
	if f.TLSCert == "" || f.TLSKey == "" {
		return usagef("--tls-cert and --tls-key go together")
	}
	certPEM, err := os.ReadFile(f.TLSCert)
	if err != nil {
		return fmt.Errorf("--tls-cert: %w", err)
	}
	if err := checkCertPEM(certPEM); err != nil {
		return fmt.Errorf("--tls-cert %s: %w", f.TLSCert, err)
	}
	keyPEM, err := os.ReadFile(f.TLSKey)
	if err != nil {
		return fmt.Errorf("--tls-key: %w", err)
	}
	// With the certificate known good, what X509KeyPair rejects is the key.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "tls: ")
		if strings.Contains(msg, "does not match") {
			msg = "does not match the certificate in " + f.TLSCert
		}
		return fmt.Errorf("--tls-key %s: %s", f.TLSKey, msg)
	}
	f.cert = &cert
	return nil
}

// checkCertPEM reports whether data holds at least one PEM certificate and
// only parsable ones, so tls.X509KeyPair's errors can be blamed on the key.
func checkCertPEM(data []byte) error {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate in it")
	}
	return nil
}

// listener wraps ln in TLS when a certificate was given, else returns it
// unchanged. The handshake happens on the connection's first read, so
// the server's read timeout bounds it too.
func (f *tlsFlags) listener(ln net.Listener) (net.Listener, error) {
	if f.cert == nil {
		if f.TLSCert != "" {
			return nil, fmt.Errorf("--tls-cert %s: not loaded (validate was not called)", f.TLSCert)
		}
		return ln, nil
	}
	return tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{*f.cert},
		// TLS 1.2 and 1.3 only, with Go's default cipher suites (AEAD,
		// forward secret) and curves.
		MinVersion: tls.VersionTLS12,
		// fasthttp speaks HTTP/1.1 only: say so, so that clients do not
		// try HTTP/2.
		NextProtos: []string{"http/1.1"},
	}), nil
}
