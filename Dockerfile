# The image holds one static binary and nothing else, so it builds with no
# base image to pull. Build the binaries first: `make image` does both.
#   CGO_ENABLED=0 go build -o bin/ ./cmd/...
FROM scratch
COPY bin/cached /cached
EXPOSE 11211 7946 7946/udp 9100
USER 65534:65534
ENTRYPOINT ["/cached"]
