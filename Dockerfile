# The image holds the static binaries and nothing else, so it builds with no
# base image to pull. Build the binaries first: `make image` does both.
#   CGO_ENABLED=0 go build -o bin/ ./cmd/...
# The entrypoint is the node; the proxy runs from the same image with
# `--entrypoint /cacheproxy` (compose: `entrypoint: ["/cacheproxy"]`).
FROM scratch
COPY bin/cached /cached
COPY bin/cacheproxy /cacheproxy
# cached: memcache, gossip, admin. cacheproxy: memcache, admin.
EXPOSE 11211 7946 7946/udp 9100 11311 9101
USER 65534:65534
ENTRYPOINT ["/cached"]
