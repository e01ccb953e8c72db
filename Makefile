# hotcache: build, test and benchmark targets. Every target runs from a clean
# checkout; nothing here needs network access beyond Go modules and apt.

GO        ?= go
BIN       := bin
FUZZTIME  ?= 60s
COMPOSE   := $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; fi)

.PHONY: all build test test-short lint fuzz bench bench-node bench-hotkeys bench-flash bench-report hotspot-eval memory image up down clean

all: build

# Static binaries of every command: cached, cacheproxy, cachebench.
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/...

# The README's test command.
test:
	$(GO) test -race ./...

test-short:
	$(GO) test -short ./...

lint:
	gofmt -l . | (! grep .) || (echo "gofmt needed on the files above" && exit 1)
	$(GO) vet ./...
	$(GO) test ./internal/lint/

# Runs every fuzz target for FUZZTIME each (FUZZTIME=10m for a long run).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReadRequest$$' -fuzztime $(FUZZTIME) ./protocol/
	$(GO) test -run '^$$' -fuzz '^FuzzReadValues$$' -fuzztime $(FUZZTIME) ./protocol/
	$(GO) test -run '^$$' -fuzz '^FuzzReadWatchEvent$$' -fuzztime $(FUZZTIME) ./protocol/
	$(GO) test -run '^$$' -fuzz '^FuzzReadWatchMessage$$' -fuzztime $(FUZZTIME) ./protocol/

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Side by side: memcached -t 2 and cached under the same load, one after the
# other, with ratios ours/memcached at pipeline depths 1 and 16.
bench-node: build
	$(GO) run ./cmd/cachebench compare -start-memcached -start-cached $(BIN)/cached -cached-args "-gossip= -admin=" \
		-conns 50 -ratio 90:10 -value-size 100 -keys 100000 -prefill \
		-duration 10s -rounds 2 -pipeline 1,16

# 3 nodes + 1 proxy started on loopback; Zipf 1.2 gets and 10% uniform sets
# over 1M keys through the proxy, with hot-key replication off, then on
# (docs/benchmarks.md, "Hot keys: replication off vs on").
bench-hotkeys: build
	$(GO) run ./cmd/cachebench hotkeys -cached $(BIN)/cached -proxy $(BIN)/cacheproxy

# Flash crowd (time to the first edge read, time to cool) and the added
# latency of a write to a replicated key (docs/hotkeys.md).
bench-flash:
	$(GO) test -run '^$$' -bench FlashCrowd -benchtime 1x -timeout 10m ./client/
	$(GO) test -run '^$$' -bench HotKeyWrite -benchtime 200x -timeout 10m ./client/

# Every scenario of bench/scenarios.json (single node vs memcached, proxy +
# 3 nodes vs twemproxy + 3 memcached, hot keys off vs on, a node killed under
# load, the generator against memcslap and memaslap), one after the other,
# with results in RESULTS and the plots in docs/img (docs/benchmarks.md).
# Needs memcached, nutcracker and libmemcached-tools; takes 10-15 minutes.
# ONLY=node,edge runs some; PLOTS_ONLY=1 only redraws the plots.
RESULTS ?= bench/results
bench-report: build
	$(GO) run ./cmd/cachebench suite -f bench/scenarios.json -results $(RESULTS) -bin $(BIN) -img docs/img \
		$(if $(ONLY),-only $(ONLY)) $(if $(PLOTS_ONLY),-plots-only)

hotspot-eval:
	$(GO) test -tags eval -run TestEvalTable -v -timeout 10m ./hotspot/

# RSS of cached while 10x -m 64 worth of 1 KiB values are written (docs/memory.md).
memory: build
	$(GO) test -tags memory -run 'TestMemoryBound|TestItemOverhead' -v -timeout 10m ./cmd/cached/ ./node/

# One image for both processes: bin/cached (the entrypoint) and bin/cacheproxy.
image: build
	@test -x $(BIN)/cached && test -x $(BIN)/cacheproxy || (echo "bin/cached and bin/cacheproxy must be built first" && exit 1)
	docker build -t hotcache/cached:dev .

up: image
	$(COMPOSE) up -d

down:
	$(COMPOSE) down

clean:
	rm -rf $(BIN)

# The three nodes and the proxy of docker-compose.yml (ports in its header), and the
# end-to-end test that starts its own copy under a unique project name.
.PHONY: cluster-up cluster-down compose-test

cluster-up: image
	$(COMPOSE) up -d

cluster-down:
	$(COMPOSE) down -v --remove-orphans

compose-test:
	$(GO) test -tags compose -v -timeout 15m ./deploy/compose/

# The chaos suite: the compose cluster under a steady, self-checking load while
# a node is killed and restarted, paused past failure detection, and cut off
# the network (docs/reliability.md). About 5 minutes; CHAOS_SHORT=1 for a
# ~2-minute CI form; CHAOS_REPORT=<file> writes the report as JSON.
.PHONY: chaos

chaos: image
	CHAOS_SHORT=$(CHAOS_SHORT) CHAOS_REPORT=$(CHAOS_REPORT) $(GO) test -tags chaos -v -timeout 20m ./deploy/chaos/
