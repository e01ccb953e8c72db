package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAuthFileFlag(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "auth")
	if err := os.WriteFile(good, []byte("alice:secret\nbob:pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags([]string{"-Y", good})
	if err != nil || o.authFile != good {
		t.Fatalf("-Y: %+v, %v", o, err)
	}
	a, err := readAuthFile(o.authFile)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Check([]byte("bob"), []byte("pw")) || a.Check([]byte("bob"), []byte("secret")) {
		t.Error("the auth file's users are not checked")
	}
	if u, p := a.First(); u != "alice" || p != "secret" {
		t.Errorf("peer credentials %q:%q, want the first line", u, p)
	}
	if a, err := readAuthFile(""); a != nil || err != nil {
		t.Errorf("no -Y: %v, %v", a, err)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("no colon\n"), 0o600)
	for _, f := range []string{bad, filepath.Join(dir, "missing")} {
		if _, err := readAuthFile(f); err == nil {
			t.Errorf("readAuthFile(%s): no error", f)
		}
	}
}
