package protocol

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// An AuthFile holds the users and passwords of a memcached -Y file: one
// "user:password" a line (the password may hold colons; blank lines are
// skipped). Its Check is a Server.Authenticate.
type AuthFile struct {
	users       map[string][]byte
	user0, pwd0 string
}

// LoadAuthFile reads and parses the auth file at path (memcached's -Y).
// Its errors name the file.
func LoadAuthFile(path string) (*AuthFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := ReadAuthFile(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// ReadAuthFile parses an auth file. It fails on a line without a colon, an
// empty user name, a user name with a space, or a file with no user.
func ReadAuthFile(r io.Reader) (*AuthFile, error) {
	a := &AuthFile{users: make(map[string][]byte)}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		user, pwd, ok := strings.Cut(line, ":")
		if !ok || user == "" || strings.ContainsAny(user, " \t") {
			return nil, fmt.Errorf("auth file line %d: want user:password", n)
		}
		if len(a.users) == 0 {
			a.user0, a.pwd0 = user, pwd
		}
		a.users[user] = []byte(pwd)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(a.users) == 0 {
		return nil, errors.New("auth file lists no user")
	}
	return a, nil
}

// Check reports whether pass is user's password, comparing passwords in
// constant time.
func (a *AuthFile) Check(user, pass []byte) bool {
	want, ok := a.users[string(user)]
	if !ok {
		want = nil
	}
	return subtle.ConstantTimeCompare(want, pass) == 1 && ok
}

// First returns the file's first user and password: the credentials a node
// or proxy presents to the nodes it connects to.
func (a *AuthFile) First() (user, pass string) { return a.user0, a.pwd0 }

// AppendAuth appends the request that authenticates a connection as user:
// a set whose data block is "<user> <password>".
func AppendAuth(dst []byte, user, pass string) []byte {
	return fmt.Appendf(dst, "set auth 0 0 %d\r\n%s %s\r\n", len(user)+1+len(pass), user, pass)
}

// authOK is a Server's reply to a successful authentication.
var authOK = []byte("STORED\r\n")

// IsAuthOK reports whether line (with its "\r\n") accepts an
// authentication request.
func IsAuthOK(line []byte) bool { return bytes.Equal(line, authOK) }
