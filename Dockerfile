# syntax=docker/dockerfile:1
#
# The cdcsync worker image. Build: docker build -t cdcsync .
# Run:   docker run --rm -v $PWD/deploy/topologies:/etc/cdcsync/topologies:ro \
#          cdcsync run --brokers kafka:9092 --topologies /etc/cdcsync/topologies
#
# A static Go binary (CGO off) on debian-slim. debian-slim rather than
# distroless so the HEALTHCHECK can use curl.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The version `cdcsync --version` prints: docker build --build-arg
# VERSION=$(git describe --tags --always --dirty) -t cdcsync .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/cdcsync ./cmd/cdcsync

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/cdcsync /usr/local/bin/cdcsync
# Topology files and the optional worker YAML are mounted here.
RUN mkdir -p /etc/cdcsync/topologies
USER 65532:65532
# /metrics, /healthz and /readyz (http_addr, default :9102).
EXPOSE 9102
# /healthz answers 200 while the process is alive; /readyz is the
# readiness check (every claimed partition's ledger restored).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9102/healthz"]
ENTRYPOINT ["cdcsync"]
CMD ["run", "--topologies", "/etc/cdcsync/topologies"]
