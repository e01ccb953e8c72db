// Package cliflag holds the command-line flag types the binaries share,
// with memcached's conventions: sizes with k and m suffixes, -v that counts
// and -vv, and comma-separated address lists. Standard library only.
package cliflag

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ByteSize is a size flag that takes memcached's k and m suffixes (-I 1m),
// from 1 byte to 1 GiB.
type ByteSize int

// String returns the size in bytes.
func (b *ByteSize) String() string { return strconv.Itoa(int(*b)) }

// Set parses "N", "Nk" or "Nm" (either case).
func (b *ByteSize) Set(s string) error {
	if s == "" {
		return errors.New("empty size")
	}
	mult := 1
	switch strings.ToLower(s[len(s)-1:]) {
	case "k":
		mult, s = 1<<10, s[:len(s)-1]
	case "m":
		mult, s = 1<<20, s[:len(s)-1]
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 || v > (1<<30)/mult {
		return fmt.Errorf("bad size %q", s)
	}
	*b = ByteSize(v * mult)
	return nil
}

// Verbosity counts -v flags (-v -v is 2; -v=3 sets it).
type Verbosity int

// String returns the level.
func (v *Verbosity) String() string { return strconv.Itoa(int(*v)) }

// IsBoolFlag lets -v stand alone.
func (v *Verbosity) IsBoolFlag() bool { return true }

// Set adds one for a bare -v, or sets a number.
func (v *Verbosity) Set(s string) error {
	if b, err := strconv.ParseBool(s); err == nil {
		if b {
			*v++
		}
		return nil
	}
	n, err := strconv.Atoi(s)
	*v = Verbosity(n)
	return err
}

// VerbosityAlias is a flag such as -vv that sets V to Level.
type VerbosityAlias struct {
	V     *Verbosity
	Level int
}

// String returns nothing: the alias has no value of its own.
func (a VerbosityAlias) String() string { return "" }

// IsBoolFlag lets the alias stand alone.
func (a VerbosityAlias) IsBoolFlag() bool { return true }

// Set sets the verbosity to Level.
func (a VerbosityAlias) Set(string) error { *a.V = Verbosity(a.Level); return nil }

// SplitList splits a comma-separated list, dropping spaces and empty items.
func SplitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
