// Command cachectl is the operator's CLI for a hotcache cluster. It talks
// to any node over the memcache text protocol (and, for drain, to the
// node's admin HTTP port):
//
//	cachectl [-seeds HOST:PORT,...] [-o table|json] [-timeout 3s]
//	         [-tls-ca FILE [-tls-cert FILE -tls-key FILE]] [-Y FILE] COMMAND [ARGS]
//
//	members                 the ring's members as a seed sees them
//	ring                    ring identity, generation, parameters, partition shares
//	hot [-watch] [-interval 1s]
//	                        hot keys across the cluster, hottest first
//	stats [NODE]            one node's stats, or the main ones of every member side by side
//	get KEY                 the value of KEY
//	set KEY VALUE [-exptime N] [-flags N]
//	                        store VALUE under KEY
//	drain NODE [-admin HOST:PORT]
//	                        make NODE leave the cluster and stop, as on SIGTERM
//
// Seeds are tried in order until one answers. Tables are for people, -o json
// for scripts. Exit status: 0 success, 1 failure (no seed answered, a
// request failed, a drain did not finish in time), 2 bad usage, 3 get of a
// missing key, 130 interrupted. See docs/cachectl.md.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hotcache/hotcache/internal/connpool"
	"github.com/hotcache/hotcache/internal/tlsconf"
	"github.com/hotcache/hotcache/protocol"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitMiss    = 3 // get: no such key
)

// exitError carries an exit status other than exitFailure; a nil err prints
// nothing.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usagef is a usage error: exit status 2.
func usagef(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// env is what every command gets: the common options and the outputs.
type env struct {
	seeds      []string
	output     string        // "table" or "json"
	timeout    time.Duration // each network step
	timeoutSet bool          // -timeout was given
	stdout     io.Writer
	stderr     io.Writer
	tlsFiles   tlsconf.Files // -tls-ca, -tls-cert, -tls-key
	tls        *tls.Config   // built from tlsFiles; nil means plaintext
	authFile   string        // -Y
	user, pass string        // the -Y file's first user, when given
}

// dial connects to a node's memcache port, over TLS when -tls-* were
// given; ctx bounds the dial and the handshake.
func (e *env) dial(ctx context.Context, addr string) (net.Conn, error) {
	var dial func(context.Context, string) (net.Conn, error)
	if e.tls != nil {
		dial = connpool.DialTLS(nil, e.tls)
	}
	if e.user != "" {
		dial = connpool.DialAuth(dial, e.user, e.pass)
	}
	if dial != nil {
		return dial(ctx, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

func (e *env) json() bool { return e.output == "json" }

// addCommon registers the common flags on fs, with the current values as
// defaults, so they may come before or after the command.
func (e *env) addCommon(fs *flag.FlagSet) {
	fs.Var((*listFlag)(&e.seeds), "seeds", "memcache addresses of seed nodes (`HOST:PORT,...`), tried in order")
	fs.Var(choiceFlag{&e.output, []string{"table", "json"}}, "o", "output `format`: table or json")
	fs.Var(durationFlag{&e.timeout, &e.timeoutSet}, "timeout", "bound (a `duration`) on each network step; for drain, on the whole wait (there 30s unless given)")
	fs.StringVar(&e.tlsFiles.CA, "tls-ca", e.tlsFiles.CA, "speak TLS to the nodes, verifying their certificates with the CA certificates in this PEM `file`")
	fs.StringVar(&e.tlsFiles.Cert, "tls-cert", e.tlsFiles.Cert, "PEM certificate `file` to present when the nodes require client certificates (with -tls-key)")
	fs.StringVar(&e.tlsFiles.Key, "tls-key", e.tlsFiles.Key, "PEM private key `file` of -tls-cert")
	fs.StringVar(&e.authFile, "Y", e.authFile, "authenticate to the nodes (started with -Y) as the first user of this user:password `file`")
}

// A command is one subcommand.
type command struct {
	name, args, summary string
	// flags registers the command's own flags; it may be nil.
	flags func(fs *flag.FlagSet)
	// hidden flags are left out of the usage.
	hidden []string
	// run runs the command with its positional arguments.
	run func(ctx context.Context, e *env, args []string) error
	// nargs checks the number of positional arguments.
	nargs func(n int) bool
}

func exactly(k int) func(int) bool { return func(n int) bool { return n == k } }
func atMost(k int) func(int) bool  { return func(n int) bool { return n <= k } }

func commands() []*command {
	return []*command{
		{name: "members", summary: "the ring's members as a seed sees them: address, state, partitions, share",
			nargs: exactly(0), run: membersCmd},
		{name: "ring", summary: "ring identity, generation, parameters and each member's share of the partitions",
			nargs: exactly(0), run: ringCmd},
		hotCommand(),
		{name: "stats", args: "[NODE]", summary: "stats of NODE (member name or address), or the main ones of every member side by side",
			nargs: atMost(1), run: statsCmd},
		{name: "get", args: "KEY", summary: "print the value of KEY (exit status 3 if there is none)",
			nargs: exactly(1), run: getCmd},
		setCommand(),
		drainCommand(),
	}
}

// run runs one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{seeds: []string{"127.0.0.1:11211"}, output: "table", timeout: 3 * time.Second, stdout: stdout, stderr: stderr}
	err := dispatch(ctx, e, args)
	if err == nil {
		return exitOK
	}
	code := exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		fmt.Fprintln(stderr, "cachectl: interrupted")
		return 130
	case err.Error() != "":
		fmt.Fprintln(stderr, "cachectl:", err)
		if code == exitUsage {
			fmt.Fprintln(stderr, "run 'cachectl -h' for usage")
		}
	}
	return code
}

func dispatch(ctx context.Context, e *env, args []string) error {
	cmds := commands()
	fs := flag.NewFlagSet("cachectl", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	e.addCommon(fs)
	fs.Usage = func() { usage(e.stderr, fs, cmds) }
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return &exitError{code: exitUsage}
	}
	name := fs.Arg(0)
	if name == "help" {
		fs.Usage()
		return nil
	}
	var cmd *command
	for _, c := range cmds {
		if c.name == name {
			cmd = c
		}
	}
	if cmd == nil {
		return usagef("unknown command %q (commands: %s)", name, commandNames(cmds))
	}
	cfs := flag.NewFlagSet("cachectl "+name, flag.ContinueOnError)
	cfs.SetOutput(e.stderr)
	if cmd.flags != nil {
		cmd.flags(cfs)
	}
	e.addCommon(cfs)
	cfs.Usage = func() { commandUsage(e.stderr, cfs, cmd) }
	pos, err := parseInterspersed(cfs, fs.Args()[1:])
	if err != nil {
		return parseError(err)
	}
	if !cmd.nargs(len(pos)) {
		return usagef("usage: cachectl %s %s", name, cmd.args)
	}
	if len(e.seeds) == 0 {
		return usagef("-seeds is empty")
	}
	if e.tlsFiles.Enabled() {
		if (e.tlsFiles.Cert == "") != (e.tlsFiles.Key == "") {
			return usagef("-tls-cert and -tls-key go together")
		}
		if e.tls, err = tlsconf.Client(e.tlsFiles); err != nil {
			return err
		}
	}
	if e.authFile != "" {
		a, err := protocol.LoadAuthFile(e.authFile)
		if err != nil {
			return err
		}
		e.user, e.pass = a.First()
	}
	return cmd.run(ctx, e, pos)
}

// parseError makes a flag error a usage error; the flag package has already
// printed it.
func parseError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &exitError{code: exitUsage}
}

// parseInterspersed parses fs's flags wherever they are among args and
// returns the positional arguments; everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

func commandNames(cmds []*command) string {
	var names []string
	for _, c := range cmds {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}

func usage(w io.Writer, fs *flag.FlagSet, cmds []*command) {
	fmt.Fprint(w, "usage: cachectl [-seeds HOST:PORT,...] [-o table|json] [-timeout 3s]\n                [-tls-ca FILE [-tls-cert FILE -tls-key FILE]] [-Y FILE] COMMAND [ARGS]\n\ncommands:\n")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprint(w, "\nflags (before or after the command):\n")
	printFlags(w, fs, nil)
	fmt.Fprint(w, "\nexit status: 0 ok, 1 failure, 2 bad usage, 3 get of a missing key\n")
}

func commandUsage(w io.Writer, fs *flag.FlagSet, c *command) {
	fmt.Fprintf(w, "usage: cachectl %s\n  %s\n\nflags:\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	printFlags(w, fs, c.hidden)
}

// printFlags is flag.PrintDefaults without the hidden flags.
func printFlags(w io.Writer, fs *flag.FlagSet, hidden []string) {
	fs.VisitAll(func(f *flag.Flag) {
		for _, h := range hidden {
			if f.Name == h {
				return
			}
		}
		name, text := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			def = " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "  -%s%s\n      %s%s\n", f.Name, name, text, def)
	})
}

// listFlag is a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	*l = nil
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*l = append(*l, f)
		}
	}
	return nil
}

// choiceFlag is a string that must be one of a few values.
type choiceFlag struct {
	v       *string
	choices []string
}

func (c choiceFlag) String() string {
	if c.v == nil {
		return ""
	}
	return *c.v
}

func (c choiceFlag) Set(s string) error {
	for _, ch := range c.choices {
		if s == ch {
			*c.v = s
			return nil
		}
	}
	return fmt.Errorf("want one of %s", strings.Join(c.choices, ", "))
}

// durationFlag is a duration that records whether it was given.
type durationFlag struct {
	d   *time.Duration
	set *bool
}

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d <= 0 {
		return errors.New("must be positive")
	}
	*f.d, *f.set = d, true
	return nil
}
