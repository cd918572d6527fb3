package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 6's hardening, end to end: the real binary's server limits cut
// off slow, oversized and too many connections, and --tls-cert/--tls-key
// serve HTTPS. Raw TCP clients play the hostile parts, since net/http
// would not misbehave on request.

// margin is what a cut-off may take beyond its timeout on a loaded CI
// machine.
const margin = 2500 * time.Millisecond

// hostOf is the host:port of a server's URL.
func hostOf(s *server) string {
	return strings.TrimPrefix(strings.TrimPrefix(s.url, "http://"), "https://")
}

// dialRaw opens a TCP connection to s that gives up after 15s whatever
// happens, so no test can hang on it.
func dialRaw(t *testing.T, s *server) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", hostOf(s), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// rawResponse is what a raw client read: the response, if the server
// sent one, and how the connection ended.
type rawResponse struct {
	status int
	code   string // the JSON error code
	closed bool   // the server closed the connection
	after  time.Duration
}

// readUntilClosed reads c until the server closes it or c's deadline
// passes, parsing the first response if one came.
func readUntilClosed(c net.Conn, start time.Time) rawResponse {
	var r rawResponse
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err == nil {
		r.status = resp.StatusCode
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		var e struct{ Error struct{ Code string } }
		if json.Unmarshal(body, &e) == nil {
			r.code = e.Error.Code
		}
		resp.Body.Close()
	}
	_, err := io.Copy(io.Discard, br)
	var ne net.Error
	r.closed = !(errors.As(err, &ne) && ne.Timeout())
	r.after = time.Since(start)
	return r
}

// TestServeSlowClientsCutOff: a slow-loris client sending its headers a
// byte at a time, and one that connects and says nothing, are both cut
// off by the read timeout, while other clients are served meanwhile.
func TestServeSlowClientsCutOff(t *testing.T) {
	const readTimeout = time.Second
	s := startServerIn(t, ".", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--catalog", testCatalog,
		"--read-timeout", readTimeout.String(), "--idle-timeout", "2s")

	const request = "POST /v1/decide HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 38\r\n\r\n" +
		`{"customer_id":"anon","channel":"web"}`
	const lorises = 8
	results := make(chan rawResponse, lorises)
	sent := make(chan int, lorises)
	for range lorises {
		c := dialRaw(t, s)
		start := time.Now()
		go func() {
			n := 0
			for ; n < len(request); n++ {
				if _, err := c.Write([]byte{request[n]}); err != nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			sent <- n
		}()
		go func() { results <- readUntilClosed(c, start) }()
	}
	silent := dialRaw(t, s)
	silentDone := make(chan rawResponse, 1)
	go func() { silentDone <- readUntilClosed(silent, time.Now()) }()

	// Meanwhile, well-behaved clients get their answers at once.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	for i := range 10 {
		start := time.Now()
		resp, err := hc.Post(s.url+"/v1/decide", "application/json", strings.NewReader(`{"customer_id":"anon","channel":"web"}`))
		if err != nil {
			t.Fatalf("decide %d during the slow clients: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || time.Since(start) > readTimeout {
			t.Errorf("decide %d during the slow clients: %d in %v", i, resp.StatusCode, time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}

	for range lorises {
		r := <-results
		if !r.closed || r.after > readTimeout+margin {
			t.Errorf("slow-loris client: closed %v after %v, want closed within %v", r.closed, r.after, readTimeout+margin)
		}
		if r.status != 0 && r.status != 408 {
			t.Errorf("slow-loris client: got status %d, want 408 or none", r.status)
		}
		if n := <-sent; n >= len(request) {
			t.Errorf("slow-loris client sent its whole request (%d bytes) before the cut-off", n)
		}
	}
	// fasthttp tells the silent one why, with a 408, before closing.
	if r := <-silentDone; !r.closed || r.after > readTimeout+margin || r.status != 0 && r.status != 408 {
		t.Errorf("silent client: closed %v after %v with status %d, want closed within %v, with 408 or nothing", r.closed, r.after, r.status, readTimeout+margin)
	}

	// A kept-alive connection left idle is closed by the idle timeout.
	c := dialRaw(t, s)
	if _, err := io.WriteString(c, "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	start := time.Now()
	_, err = io.Copy(io.Discard, br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || time.Since(start) > 2*time.Second+margin {
		t.Errorf("idle keep-alive connection: still open after %v, want closed within 2s", time.Since(start))
	}
}

// TestServeOversizedBodies: a body over --max-body is refused with 413 and
// a JSON error as soon as its length is known, and the connection does
// not hang; a body shorter than its Content-Length is cut off by the read
// timeout.
func TestServeOversizedBodies(t *testing.T) {
	const readTimeout = time.Second
	s := startServerIn(t, ".", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--catalog", testCatalog,
		"--max-body", "1KiB", "--read-timeout", readTimeout.String())

	tests := []struct {
		name    string
		request string // sent whole; the rest of the body never comes
		status  int
		code    string
		within  time.Duration
	}{
		{
			name:    "declared too large",
			request: "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n",
			status:  413, code: "payload_too_large", within: margin,
		},
		{
			name: "chunked past the limit",
			request: "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"300\r\n" + strings.Repeat(" ", 0x300) + "\r\n300\r\n" + strings.Repeat(" ", 0x300) + "\r\n",
			status: 413, code: "payload_too_large", within: margin,
		},
		{
			name:    "shorter than declared",
			request: "POST /v1/decide HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n" + `{"customer_id":`,
			status:  408, code: "request_timeout", within: readTimeout + margin,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, s)
			start := time.Now()
			if _, err := io.WriteString(c, tt.request); err != nil {
				t.Fatal(err)
			}
			r := readUntilClosed(c, start)
			if r.status != tt.status || r.code != tt.code {
				t.Errorf("got %d %q, want %d %q", r.status, r.code, tt.status, tt.code)
			}
			if !r.closed || r.after > tt.within {
				t.Errorf("connection closed %v after %v, want closed within %v", r.closed, r.after, tt.within)
			}
		})
	}

	// A body within the limit still works on the same server.
	status, body := s.call("POST", "/v1/decide", `{"customer_id":"anon","channel":"web"}`)
	if status != 200 {
		t.Errorf("decide within the limit: %d %s", status, body)
	}
}

// TestServeOversizedHeaders: headers over 8 KiB get 431 with a JSON error.
func TestServeOversizedHeaders(t *testing.T) {
	s := startServer(t, t.TempDir())
	status, body := s.call("GET", "/readyz", "", "X-Pad", strings.Repeat("x", 9<<10))
	var e struct{ Error struct{ Code string } }
	if status != 431 || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != "headers_too_large" {
		t.Errorf("9 KiB header: got %d %.200s, want 431 headers_too_large", status, body)
	}
	// Just under the limit is fine.
	if status, body := s.call("GET", "/readyz", "", "X-Pad", strings.Repeat("x", 6<<10)); status != 200 {
		t.Errorf("6 KiB header: got %d %.200s, want 200", status, body)
	}
}

// TestServeMaxConnsPerIP: past --max-conns-per-ip concurrent connections
// from one address, a new one is refused (fasthttp answers 429 and
// closes); once one closes, a new one is served.
func TestServeMaxConnsPerIP(t *testing.T) {
	const limit = 4
	s := startServerIn(t, ".", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--catalog", testCatalog,
		"--max-conns-per-ip", fmt.Sprint(limit))
	client.CloseIdleConnections() // waitReady's kept-alive connection counts too

	// get sends a keep-alive request on c and returns the status, 0 if
	// the connection was closed instead.
	get := func(c net.Conn) int {
		if _, err := io.WriteString(c, "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
			return 0
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// The server notices closed connections asynchronously: retry until
	// limit connections are open and served.
	var open []net.Conn
	deadline := time.Now().Add(5 * time.Second)
	for len(open) < limit {
		c := dialRaw(t, s)
		if st := get(c); st == 200 {
			open = append(open, c)
			continue
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("only %d connections served, want %d", len(open), limit)
		}
		time.Sleep(50 * time.Millisecond)
	}

	extra := dialRaw(t, s)
	start := time.Now()
	r := readUntilClosed(extra, start)
	if r.status != 429 || !r.closed || r.after > margin {
		t.Errorf("connection %d: got status %d, closed %v after %v; want 429 and closed", limit+1, r.status, r.closed, r.after)
	}
	for i, c := range open {
		if st := get(c); st != 200 {
			t.Errorf("connection %d after the refusal: got %d, want 200", i, st)
		}
	}

	open[0].Close()
	for {
		c := dialRaw(t, s)
		if st := get(c); st == 200 {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("no connection served after one of the open ones closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeCert writes a self-signed ECDSA certificate for 127.0.0.1 and its
// key to dir, returning their paths and the certificate.
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "nextbest test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// TestServeTLS: with --tls-cert and --tls-key the API answers over HTTPS
// (TLS 1.2 at least) to a client trusting the certificate, and plain HTTP
// on the same port gets nothing.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := writeCert(t, dir, "server")
	s := startListening(t, ".", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--catalog", testCatalog,
		"--tls-cert", certFile, "--tls-key", keyFile)
	s.url = "https://" + hostOf(s)

	roots := x509.NewCertPool()
	roots.AddCert(cert)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true, // the server must settle on HTTP/1.1 anyway
	}}
	defer hc.CloseIdleConnections()
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err = hc.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("HTTPS server not ready within 10s: %v", err)
		}
	}

	resp, err = hc.Post(s.url+"/v1/decide", "application/json", strings.NewReader(`{"customer_id":"anon","channel":"web"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var d decideResponse
	if resp.StatusCode != 200 || json.Unmarshal(body, &d) != nil || len(d.Offers) == 0 || d.Offers[0].ID != "welcome" {
		t.Errorf("decide over HTTPS: got %d %s, want the welcome offer", resp.StatusCode, body)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 || resp.Proto != "HTTP/1.1" {
		t.Errorf("connection: TLS %+v, protocol %s; want TLS 1.2 or later and HTTP/1.1", resp.TLS, resp.Proto)
	}

	// Plain HTTP to the TLS port gets no answer.
	plain := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	if resp, err := plain.Get("http://" + hostOf(s) + "/readyz"); err == nil {
		resp.Body.Close()
		t.Errorf("plain HTTP to the TLS port: got %d, want an error", resp.StatusCode)
	}
	// Neither do clients stuck before TLS 1.2, nor ones that do not trust
	// the certificate.
	old := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11},
	}}
	if resp, err := old.Get(s.url + "/readyz"); err == nil {
		resp.Body.Close()
		t.Error("TLS 1.1 client: got an answer, want a handshake failure")
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(s.url + "/readyz"); err == nil {
		resp.Body.Close()
		t.Error("client not trusting the certificate: got an answer, want a verification failure")
	}
}

// TestServeBadTLSFlags: a bad certificate setup stops serve before it
// listens, with a message naming the flag and the file.
func TestServeBadTLSFlags(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeCert(t, dir, "server")
	_, otherKey, _ := writeCert(t, dir, "other")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.crt")
	unreadable := t.TempDir() // a directory: unreadable as a file, even by root

	tests := []struct {
		name string
		args []string
		code int
		want []string // substrings of stderr
	}{
		{"cert without key", []string{"--tls-cert", certFile}, 2, []string{"--tls-cert and --tls-key go together"}},
		{"key without cert", []string{"--tls-key", keyFile}, 2, []string{"--tls-cert and --tls-key go together"}},
		{"missing cert", []string{"--tls-cert", missing, "--tls-key", keyFile}, 1, []string{"--tls-cert", missing}},
		{"cert not PEM", []string{"--tls-cert", notPEM, "--tls-key", keyFile}, 1, []string{"--tls-cert " + notPEM, "no PEM certificate"}},
		{"unreadable key", []string{"--tls-cert", certFile, "--tls-key", unreadable}, 1, []string{"--tls-key", unreadable}},
		{"key of another cert", []string{"--tls-cert", certFile, "--tls-key", otherKey}, 1, []string{"--tls-key " + otherKey, "does not match the certificate in " + certFile}},
		{"cert given as key", []string{"--tls-cert", certFile, "--tls-key", certFile}, 1, []string{"--tls-key " + certFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--catalog", testCatalog, "--insecure-no-auth"}, tt.args...)
			code, _, stderr := runBinary(t, args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "msg=listening") {
				t.Errorf("serve listened before rejecting its TLS flags:\n%s", stderr)
			}
		})
	}
}
