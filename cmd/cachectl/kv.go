package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/hotcache/hotcache/client"
)

// newClient checks that a seed answers (for the same error as every other
// command) and returns a cluster-mode client without a near cache, which
// sends every request to the key's owner.
func (e *env) newClient(ctx context.Context) (*client.Client, error) {
	cv, err := e.cluster(ctx)
	if err != nil {
		return nil, err
	}
	seeds := append([]string{cv.seed}, slices.DeleteFunc(slices.Clone(e.seeds), func(s string) bool { return s == cv.seed })...)
	return client.New(client.Config{
		Seeds:          seeds,
		Name:           "cachectl",
		Timeout:        e.timeout,
		DialTimeout:    e.timeout,
		NearCacheBytes: -1,
		TLS:            e.tls,
		Username:       e.user,
		Password:       e.pass,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

// callContext bounds one client call: the wait for the ring, then the
// request, each up to -timeout.
func (e *env) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 3*e.timeout)
}

func getCmd(ctx context.Context, e *env, args []string) error {
	key := args[0]
	c, err := e.newClient(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := e.callContext(ctx)
	defer cancel()
	it, err := c.Get(cctx, key)
	if errors.Is(err, client.ErrCacheMiss) {
		if e.json() {
			writeJSON(e.stdout, struct {
				Key   string `json:"key"`
				Found bool   `json:"found"`
			}{key, false}, false)
		}
		return &exitError{code: exitMiss, err: fmt.Errorf("get %s: not found", key)}
	}
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	if e.json() {
		return writeJSON(e.stdout, struct {
			Key   string `json:"key"`
			Found bool   `json:"found"`
			Value string `json:"value"`
			Flags uint32 `json:"flags"`
			Cas   uint64 `json:"cas"`
		}{it.Key, true, string(it.Value), it.Flags, it.CasID}, false)
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", it.Value)
	return err
}

func setCommand() *command {
	var exptime int
	var flags uint
	return &command{
		name: "set", args: "KEY VALUE [-exptime N] [-flags N]",
		summary: "store VALUE under KEY and print STORED (a VALUE starting with '-' goes after --)",
		flags: func(fs *flag.FlagSet) {
			fs.IntVar(&exptime, "exptime", 0, "expiry: 0 never, up to 30 days relative seconds, larger a unix time")
			fs.UintVar(&flags, "flags", 0, "client flags (32 bits)")
		},
		nargs: exactly(2),
		run: func(ctx context.Context, e *env, args []string) error {
			if flags > 1<<32-1 {
				return usagef("-flags %d does not fit in 32 bits", flags)
			}
			if int64(exptime) != int64(int32(exptime)) {
				return usagef("-exptime %d does not fit in 32 bits", exptime)
			}
			c, err := e.newClient(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			cctx, cancel := e.callContext(ctx)
			defer cancel()
			item := &client.Item{Key: args[0], Value: []byte(args[1]), Flags: uint32(flags), Expiration: int32(exptime)}
			if err := c.Set(cctx, item); err != nil {
				return fmt.Errorf("set %s: %w", args[0], err)
			}
			if e.json() {
				return writeJSON(e.stdout, struct {
					Key    string `json:"key"`
					Result string `json:"result"`
				}{args[0], "STORED"}, false)
			}
			_, err = fmt.Fprintln(e.stdout, "STORED")
			return err
		},
	}
}
