package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// loadOptions is the workload, shared by the run and compare commands.
type loadOptions struct {
	conns     int           // connections per server
	pipelines []int         // requests in flight per connection; one run per depth
	getWeight int           // get:set ratio
	setWeight int           //
	keys      int           // key ids are [0, keys)
	dist      string        // "uniform" or "zipf"
	s         float64       // Zipf exponent
	valueSize int           // bytes per set
	duration  time.Duration // measured time per run, unless requests > 0
	requests  int64         // measured requests per run; overrides duration
	warmup    time.Duration // unmeasured load before each run
	prefill   bool          // set every key once before the first run
	seed      uint64        // seeds every key stream and get/set choice
	timeout   time.Duration // deadline for each network read or write
	json      bool          // print the result as JSON
}

func addLoadFlags(fs *flag.FlagSet, o *loadOptions) {
	o.pipelines = []int{1}
	o.getWeight, o.setWeight = 90, 10
	fs.IntVar(&o.conns, "conns", 50, "connections per server, one goroutine each")
	fs.Var((*intList)(&o.pipelines), "pipeline", "requests in flight per connection, written as one batch; a list such as 1,16 runs each depth")
	fs.Var(&ratioFlag{&o.getWeight, &o.setWeight}, "ratio", "get:set ratio")
	fs.IntVar(&o.keys, "keys", 100000, "number of distinct keys")
	fs.StringVar(&o.dist, "dist", "zipf", "key distribution: uniform or zipf")
	fs.Float64Var(&o.s, "s", 0.99, "Zipf skew, any s >= 0 (0 is uniform)")
	fs.IntVar(&o.valueSize, "value-size", 100, "value size in bytes for sets")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each run")
	fs.Int64Var(&o.requests, "requests", 0, "measured requests of each run, over all connections (overrides -duration)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before each run that is not measured")
	fs.BoolVar(&o.prefill, "prefill", false, "set every key once before the first run, so that gets hit")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the key streams and the get/set choice")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "deadline of each network read and write")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON")
}

func (o *loadOptions) validate() error {
	switch {
	case o.conns <= 0:
		return errors.New("-conns must be positive")
	case len(o.pipelines) == 0:
		return errors.New("-pipeline needs at least one depth")
	case o.keys <= 0:
		return errors.New("-keys must be positive")
	case o.dist != "uniform" && o.dist != "zipf":
		return fmt.Errorf("-dist %q: want uniform or zipf", o.dist)
	case !(o.s >= 0) || math.IsInf(o.s, 0):
		return fmt.Errorf("-s %v: want a finite s >= 0", o.s)
	case o.valueSize < 0 || o.valueSize > 1<<30:
		return errors.New("-value-size must be in [0, 1GiB]")
	case o.requests < 0:
		return errors.New("-requests must not be negative")
	case o.requests == 0 && o.duration <= 0:
		return errors.New("-duration must be positive (or give -requests)")
	case o.warmup < 0:
		return errors.New("-warmup must not be negative")
	case o.timeout <= 0:
		return errors.New("-timeout must be positive")
	}
	for _, d := range o.pipelines {
		if d <= 0 || d > 1<<16 {
			return fmt.Errorf("-pipeline %d: want 1..65536", d)
		}
	}
	return nil
}

// describe is a one-line summary of the workload.
func (o *loadOptions) describe() string {
	dist := "uniform"
	if o.dist == "zipf" {
		dist = fmt.Sprintf("zipf s=%g", o.s)
	}
	length := fmt.Sprintf("%v", o.duration)
	if o.requests > 0 {
		length = fmt.Sprintf("%d requests", o.requests)
	}
	prefill := ""
	if o.prefill {
		prefill = ", prefilled"
	}
	return fmt.Sprintf("%d conns/server, get:set %d:%d, %s over %d keys%s, %d-byte values, %s after %v warmup",
		o.conns, o.getWeight, o.setWeight, dist, o.keys, prefill, o.valueSize, length, o.warmup)
}

// intList is a flag holding a comma-separated list of positive ints.
type intList []int

func (l *intList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}

// ratioFlag is a get:set ratio such as 90:10.
type ratioFlag struct{ get, set *int }

func (r *ratioFlag) String() string {
	if r.get == nil {
		return ""
	}
	return fmt.Sprintf("%d:%d", *r.get, *r.set)
}

func (r *ratioFlag) Set(v string) error {
	gs, ss, ok := strings.Cut(v, ":")
	g, err1 := strconv.Atoi(gs)
	s, err2 := strconv.Atoi(ss)
	if !ok || err1 != nil || err2 != nil || g < 0 || s < 0 || g+s == 0 || g+s > 1<<20 {
		return fmt.Errorf("%q: want get:set, e.g. 90:10", v)
	}
	*r.get, *r.set = g, s
	return nil
}

// addrList is a comma-separated list of host:port addresses.
type addrList []string

func (l *addrList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *addrList) Set(v string) error {
	addrs, err := parseAddrs(v)
	if err != nil {
		return err
	}
	*l = addrs
	return nil
}

func parseAddrs(v string) ([]string, error) {
	var out []string
	for a := range strings.SplitSeq(v, ",") {
		a = strings.TrimSpace(a)
		host, port, err := net.SplitHostPort(a)
		if _, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil || host == "" {
			return nil, fmt.Errorf("%q: want host:port", a)
		}
		out = append(out, a)
	}
	return out, nil
}

// countFlag is a boolean flag that counts: each -start-memcached adds one,
// and -start-memcached=N sets the count.
type countFlag int

func (c *countFlag) String() string   { return strconv.Itoa(int(*c)) }
func (c *countFlag) IsBoolFlag() bool { return true }

func (c *countFlag) Set(v string) error {
	switch v {
	case "true":
		*c++
	case "false":
		*c = 0
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%q: want a count", v)
		}
		*c = countFlag(n)
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
