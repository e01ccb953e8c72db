package tlsconf

import (
	"crypto/tls"
	"path/filepath"
	"testing"
)

func TestServerAndClient(t *testing.T) {
	ca, err := NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.WriteFiles(t.TempDir(), "n")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Server(f)
	if err != nil || len(s.Certificates) != 1 || s.ClientAuth != tls.RequireAndVerifyClientCert || s.ClientCAs == nil {
		t.Fatalf("Server with CA: %+v, %v", s, err)
	}
	c, err := Client(f)
	if err != nil || len(c.Certificates) != 1 || c.RootCAs == nil {
		t.Fatalf("Client: %+v, %v", c, err)
	}
	if s, err = Server(Files{Cert: f.Cert, Key: f.Key}); err != nil || s.ClientAuth != tls.NoClientCert {
		t.Fatalf("Server without CA: %+v, %v", s, err)
	}
	if c, err = Client(Files{CA: f.CA}); err != nil || len(c.Certificates) != 0 || c.RootCAs == nil {
		t.Fatalf("Client with only a CA: %+v, %v", c, err)
	}
	for name, bad := range map[string]Files{
		"no cert":       {CA: f.CA},
		"cert, no key":  {Cert: f.Cert},
		"missing file":  {Cert: f.Cert, Key: filepath.Join(t.TempDir(), "nope")},
		"CA not PEM":    {Cert: f.Cert, Key: f.Key, CA: f.Key + "x"},
		"key as the CA": {Cert: f.Cert, Key: f.Key, CA: f.Key},
	} {
		if _, err := Server(bad); err == nil {
			t.Errorf("Server(%s): no error", name)
		}
	}
}
