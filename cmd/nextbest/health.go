package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthCmd asks a server on this machine whether it is live or ready:
// the container image's HEALTHCHECK, as the distroless base has no shell
// or curl. It reads the server's own --addr and --tls-cert (or their
// variables), so the same environment configures both.
type healthCmd struct {
	Addr    string        `default:"127.0.0.1:8080" env:"NEXTBEST_ADDR" help:"Address the server listens on; an unspecified host (0.0.0.0, ::, none) is asked on loopback."`
	TLSCert string        `name:"tls-cert" env:"NEXTBEST_TLS_CERT" help:"Set when the server serves HTTPS: ask over TLS, without verifying its certificate (it is on this machine)."`
	Ready   bool          `env:"NEXTBEST_HEALTHCHECK_READY" help:"Ask GET /readyz (may take traffic) instead of GET /healthz (is running)."`
	Timeout time.Duration `default:"3s" env:"NEXTBEST_HEALTHCHECK_TIMEOUT" help:"Time the answer may take."`
}

func (c *healthCmd) Run(ctx context.Context, e *env) error {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return usagef("--addr %q: %v", c.Addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	scheme, path := "http", "/healthz"
	if c.TLSCert != "" {
		scheme = "https"
	}
	if c.Ready {
		path = "/readyz"
	}
	url := scheme + "://" + net.JoinHostPort(host, port) + path
	client := &http.Client{
		Timeout: c.Timeout,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // a local server, asked only whether it answers
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s: %s %s", url, resp.Status, body)
	}
	_, err = e.stdout.Write(body)
	return err
}
