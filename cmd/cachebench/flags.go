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
	getWeight int           // get:set:delete ratio
	setWeight int           //
	delWeight int           //
	keys      int           // key ids are [0, keys)
	dist      string        // "uniform", "zipf", "hotspot" or "flash"
	s         float64       // Zipf exponent (zipf, hotspot, flash)
	valueSize int           // bytes per set, or the smallest size of a range
	valueMax  int           // the largest size of a range; 0 if every value has valueSize bytes
	duration  time.Duration // measured time per run, unless requests > 0
	requests  int64         // measured requests per run; overrides duration
	warmup    time.Duration // unmeasured load before each run
	prefill   bool          // set every key once before the first run
	seed      uint64        // seeds every key stream and get/set choice
	timeout   time.Duration // deadline for each network read or write
	json      bool          // print the result as JSON
	rate      float64       // open loop: requests per second over all connections; 0 is a closed loop
	route     string        // "client-hash" or "single"
	engine    string        // "go" or "epoll"

	// The hot set of -dist hotspot and the flash crowd of -dist flash, on
	// the measured window's clock (workload.Scenario).
	shiftEvery time.Duration
	shiftRanks int
	flashAt    time.Duration
	flashFor   time.Duration
	flashShare float64
}

const (
	routeHash   = "client-hash"
	routeSingle = "single"

	engineGo    = "go"
	engineEpoll = "epoll"
)

func addLoadFlags(fs *flag.FlagSet, o *loadOptions) {
	o.pipelines = []int{1}
	o.getWeight, o.setWeight = 90, 10
	o.valueSize = 100
	fs.IntVar(&o.conns, "conns", 50, "connections per server, one goroutine each")
	fs.Var((*intList)(&o.pipelines), "pipeline", "requests in flight per connection, written as one batch; a list such as 1,16 runs each depth")
	fs.Var(&ratioFlag{&o.getWeight, &o.setWeight, &o.delWeight}, "ratio", "get:set or get:set:delete ratio, e.g. 90:10 or 90:9:1")
	fs.IntVar(&o.keys, "keys", 100000, "number of distinct keys")
	fs.StringVar(&o.dist, "dist", "zipf", "key distribution: uniform, zipf, hotspot (Zipf whose hot set moves every -shift-every) or flash (Zipf plus a flash crowd on one cold key at -flash-at)")
	fs.Float64Var(&o.s, "s", 0.99, "Zipf skew of zipf, hotspot and flash, any s >= 0 (0 is uniform)")
	fs.Var(&sizeFlag{&o.valueSize, &o.valueMax}, "value-size", "value size in bytes for sets: N, or MIN-MAX for a size per key drawn uniformly from the range")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each run")
	fs.Int64Var(&o.requests, "requests", 0, "measured requests of each run, over all connections (overrides -duration)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before each run that is not measured")
	fs.BoolVar(&o.prefill, "prefill", false, "set every key once before the first run, so that gets hit")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the key streams and the get/set choice")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "deadline of each network read and write")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON")
	fs.Float64Var(&o.rate, "rate", 0, "open loop: send this many requests per second in all, on a fixed schedule per connection, and measure latency from each request's scheduled time (0: closed loop)")
	fs.StringVar(&o.route, "route", routeHash, "client-hash: connections to every server, each key to the server xxhash(key) mod n picks; single: every request to the first server (a proxy), the other servers are only read for their stats (per-node load)")
	fs.StringVar(&o.engine, "engine", "", "I/O engine: go (a goroutine per connection) or epoll (Linux, closed loop only: one thread per CPU polls its share of the connections, as memaslap does; about 40% less CPU per request); default epoll where it can run, else go")
	fs.DurationVar(&o.shiftEvery, "shift-every", 5*time.Second, "hotspot: period of the hot-set shifts")
	fs.IntVar(&o.shiftRanks, "shift-ranks", 100, "hotspot: how many of the hottest ranks each shift swaps with cold keys")
	fs.DurationVar(&o.flashAt, "flash-at", 5*time.Second, "flash: start of the flash crowd, from the start of the measured window")
	fs.DurationVar(&o.flashFor, "flash-for", 5*time.Second, "flash: length of the flash crowd")
	fs.Float64Var(&o.flashShare, "flash-share", 0.2, "flash: share of all requests that go to the flash key during the crowd")
}

func (o *loadOptions) validate() error {
	switch {
	case o.conns <= 0:
		return errors.New("-conns must be positive")
	case len(o.pipelines) == 0:
		return errors.New("-pipeline needs at least one depth")
	case o.keys <= 0:
		return errors.New("-keys must be positive")
	case o.dist != "uniform" && o.dist != "zipf" && o.dist != "hotspot" && o.dist != "flash":
		return fmt.Errorf("-dist %q: want uniform, zipf, hotspot or flash", o.dist)
	case !(o.s >= 0) || math.IsInf(o.s, 0):
		return fmt.Errorf("-s %v: want a finite s >= 0", o.s)
	case o.valueSize < 0 || o.valueSize > 1<<30 || o.valueMax > 1<<30:
		return errors.New("-value-size must be in [0, 1GiB]")
	case o.requests < 0:
		return errors.New("-requests must not be negative")
	case o.requests == 0 && o.duration <= 0:
		return errors.New("-duration must be positive (or give -requests)")
	case o.warmup < 0:
		return errors.New("-warmup must not be negative")
	case o.timeout <= 0:
		return errors.New("-timeout must be positive")
	case !(o.rate >= 0) || math.IsInf(o.rate, 0):
		return fmt.Errorf("-rate %v: want a finite rate >= 0", o.rate)
	case o.engine != "" && o.engine != engineGo && o.engine != engineEpoll:
		return fmt.Errorf("-engine %q: want go or epoll", o.engine)
	case o.engine == engineEpoll && !epollAvailable:
		return errors.New("-engine epoll needs Linux")
	case o.engine == engineEpoll && o.rate > 0:
		return errors.New("-engine epoll runs a closed loop: drop -rate, or use -engine go")
	case o.route != routeHash && o.route != routeSingle:
		return fmt.Errorf("-route %q: want client-hash or single", o.route)
	case o.dist == "hotspot" && (o.shiftEvery <= 0 || o.shiftRanks <= 0 || o.keys/2-1 < 2*o.shiftRanks):
		return fmt.Errorf("-dist hotspot needs -shift-every > 0 and 0 < -shift-ranks <= (keys/2-1)/2, got %v, %d with %d keys", o.shiftEvery, o.shiftRanks, o.keys)
	case o.dist == "flash" && (!(o.flashShare > 0 && o.flashShare < 1) || o.flashAt < 0 || o.flashFor <= 0):
		return fmt.Errorf("-dist flash needs -flash-share in (0, 1), -flash-at >= 0 and -flash-for > 0")
	}
	for _, d := range o.pipelines {
		if d <= 0 || d > 1<<16 {
			return fmt.Errorf("-pipeline %d: want 1..65536", d)
		}
	}
	if o.engine == "" {
		o.engine = engineGo
		if epollAvailable && o.rate == 0 {
			o.engine = engineEpoll
		}
	}
	return nil
}

// scenario reports whether the keys come from a workload.Scenario.
func (o *loadOptions) scenario() bool { return o.dist == "hotspot" || o.dist == "flash" }

// ratioString is the request mix as given: get:set or get:set:delete.
func (o *loadOptions) ratioString() string {
	if o.delWeight > 0 {
		return fmt.Sprintf("%d:%d:%d", o.getWeight, o.setWeight, o.delWeight)
	}
	return fmt.Sprintf("%d:%d", o.getWeight, o.setWeight)
}

// sizeString is the value size as given: N or MIN-MAX.
func (o *loadOptions) sizeString() string {
	if o.valueMax > 0 && o.valueMax != o.valueSize {
		return fmt.Sprintf("%d-%d", o.valueSize, o.valueMax)
	}
	return strconv.Itoa(o.valueSize)
}

// newRequest returns the request encoder of the workload.
func (o *loadOptions) newRequest() *request {
	if o.valueMax > o.valueSize {
		return newRangeRequest(o.valueSize, o.valueMax)
	}
	return newRequest(o.valueSize)
}

// describe is a one-line summary of the workload.
func (o *loadOptions) describe() string {
	dist := "uniform"
	switch o.dist {
	case "zipf":
		dist = fmt.Sprintf("zipf s=%g", o.s)
	case "hotspot":
		dist = fmt.Sprintf("hotspot zipf s=%g, top %d ranks shift every %v", o.s, o.shiftRanks, o.shiftEvery)
	case "flash":
		dist = fmt.Sprintf("flash zipf s=%g, %g%% of requests to one cold key from %v for %v", o.s, 100*o.flashShare, o.flashAt, o.flashFor)
	}
	length := fmt.Sprintf("%v", o.duration)
	if o.requests > 0 {
		length = fmt.Sprintf("%d requests", o.requests)
	}
	prefill := ""
	if o.prefill {
		prefill = ", prefilled"
	}
	mix := "get:set " + o.ratioString()
	if o.delWeight > 0 {
		mix = "get:set:delete " + o.ratioString()
	}
	loop := "closed loop"
	if o.engine != "" {
		loop += " (" + o.engine + " engine)"
	}
	if o.rate > 0 {
		loop = fmt.Sprintf("open loop at %.0f requests/s", o.rate)
	}
	route := ""
	if o.route == routeSingle {
		route = ", route single"
	}
	return fmt.Sprintf("%d conns/server, %s, %s, %s over %d keys%s, %s-byte values, %s after %v warmup%s",
		o.conns, loop, mix, dist, o.keys, prefill, o.sizeString(), length, o.warmup, route)
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

// ratioFlag is a get:set ratio such as 90:10, or get:set:delete such as
// 90:9:1.
type ratioFlag struct{ get, set, del *int }

func (r *ratioFlag) String() string {
	if r.get == nil {
		return ""
	}
	if *r.del > 0 {
		return fmt.Sprintf("%d:%d:%d", *r.get, *r.set, *r.del)
	}
	return fmt.Sprintf("%d:%d", *r.get, *r.set)
}

func (r *ratioFlag) Set(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) != 2 && len(parts) != 3 {
		return fmt.Errorf("%q: want get:set or get:set:delete, e.g. 90:10 or 90:9:1", v)
	}
	var w [3]int
	sum := 0
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 1<<20 {
			return fmt.Errorf("%q: want get:set or get:set:delete, e.g. 90:10 or 90:9:1", v)
		}
		w[i] = n
		sum += n
	}
	if sum == 0 || sum > 1<<20 {
		return fmt.Errorf("%q: the weights must add up to 1..%d", v, 1<<20)
	}
	*r.get, *r.set, *r.del = w[0], w[1], w[2]
	return nil
}

// sizeFlag is a value size N, or a range MIN-MAX.
type sizeFlag struct{ min, max *int }

func (f *sizeFlag) String() string {
	if f.min == nil {
		return ""
	}
	if *f.max > *f.min {
		return fmt.Sprintf("%d-%d", *f.min, *f.max)
	}
	return strconv.Itoa(*f.min)
}

func (f *sizeFlag) Set(v string) error {
	lo, hi, ranged := strings.Cut(v, "-")
	a, err1 := strconv.Atoi(lo)
	b, err2 := a, error(nil)
	if ranged {
		b, err2 = strconv.Atoi(hi)
	}
	if err1 != nil || err2 != nil || a < 0 || b < a || b > 1<<30 {
		return fmt.Errorf("%q: want a size N or a range MIN-MAX of bytes, 0 <= MIN <= MAX", v)
	}
	*f.min, *f.max = a, 0
	if b > a {
		*f.max = b
	}
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
