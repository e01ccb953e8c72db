package protocol

import (
	"bufio"
	"strings"
	"testing"
)

func TestReadAuthFile(t *testing.T) {
	a, err := ReadAuthFile(strings.NewReader("alice:secret\r\n\nbob:pa:ss\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, pass string
		ok         bool
	}{
		{"alice", "secret", true},
		{"bob", "pa:ss", true},
		{"alice", "secreT", false},
		{"alice", "", false},
		{"carol", "", false},
		{"", "", false},
	} {
		if got := a.Check([]byte(c.user), []byte(c.pass)); got != c.ok {
			t.Errorf("Check(%q, %q) = %v", c.user, c.pass, got)
		}
	}
	if u, p := a.First(); u != "alice" || p != "secret" {
		t.Errorf("First() = %q, %q", u, p)
	}
	for _, bad := range []string{"", "\n\n", "nocolon\n", ":pw\n", "a b:pw\n"} {
		if _, err := ReadAuthFile(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadAuthFile(%q): no error", bad)
		}
	}
}

// TestServerAuthenticate checks memcached's ASCII authentication, with its
// wording: an unauthenticated connection can do nothing, a malformed token
// and a wrong password are refused, and the right one lets it in.
func TestServerAuthenticate(t *testing.T) {
	a, err := ReadAuthFile(strings.NewReader("alice:secret\n"))
	if err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, &Server{Handler: echoHandler, Authenticate: a.Check})
	c := dial(t, addr)
	r := bufio.NewReader(c)
	do := func(in, want string) {
		t.Helper()
		if _, err := c.Write([]byte(in)); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		if err != nil || got != want+"\r\n" {
			t.Fatalf("%q: got %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"get k\r\n", "gets a b\r\n", "version\r\n", "stats\r\n", "mn\r\n",
		"watch edge 1\r\n", "delete k\r\n", "incr k 1\r\n", "flush_all\r\n", "add k 0 0 12\r\nalice secret\r\n"} {
		do(in, "CLIENT_ERROR unauthenticated")
	}
	do("set k 0 0 2\r\nhi\r\n", "CLIENT_ERROR bad authentication token format")
	do("set k 0 0 9\r\nalice bad\r\n", "CLIENT_ERROR authentication failure")
	do("set k 0 0 10\r\nbob secret\r\n", "CLIENT_ERROR authentication failure")
	do("get k\r\n", "CLIENT_ERROR unauthenticated")
	do(string(AppendAuth(nil, "alice", "secret")), "STORED")
	do("version\r\n", "VERSION test")
	do("set k 0 0 2\r\nhi\r\n", "STORED")
	// Authentication is per connection.
	c2 := dial(t, addr)
	c2.Write([]byte("version\r\n"))
	if l, _ := bufio.NewReader(c2).ReadString('\n'); l != "CLIENT_ERROR unauthenticated\r\n" {
		t.Fatalf("a second connection: %q", l)
	}
}
