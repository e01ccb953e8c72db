// Package tlsconf builds the TLS configurations of cached, cacheproxy and
// cachectl from PEM files (their -tls-cert, -tls-key and -tls-ca flags),
// and issues throwaway certificates for tests. It imports only the
// standard library.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Files names the PEM files of one party: its certificate chain and key
// (both or neither) and the CA that signs the other parties' certificates.
type Files struct {
	Cert, Key, CA string
}

// Enabled reports whether any file is named.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

func (f Files) check() error {
	if (f.Cert == "") != (f.Key == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	return nil
}

func (f Files) pair() ([]tls.Certificate, error) {
	if f.Cert == "" {
		return nil, nil
	}
	c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return []tls.Certificate{c}, nil
}

// CertPool reads a PEM file of one or more CA certificates.
func CertPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls: %s holds no PEM certificate", file)
	}
	return p, nil
}

// Server is the configuration of a TLS listener: it presents Cert/Key and,
// when CA is set, requires every client to present a certificate signed by
// it (mutual TLS). Cert and Key are required.
func Server(f Files) (*tls.Config, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	if f.Cert == "" {
		return nil, errors.New("a TLS listener needs -tls-cert and -tls-key")
	}
	certs, err := f.pair()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: certs, MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		if cfg.ClientCAs, err = CertPool(f.CA); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Client is the configuration of a TLS client: it trusts CA (the system
// roots when empty) for the servers' certificates and presents Cert/Key,
// when set, as its client certificate.
func Client(f Files) (*tls.Config, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	certs, err := f.pair()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: certs, MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		if cfg.RootCAs, err = CertPool(f.CA); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}
