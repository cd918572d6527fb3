# syntax=docker/dockerfile:1
# Multi-stage build: a static nextbest binary on a distroless base, run as
# a non-root user.
# Build: docker build --build-arg VERSION="$(git describe --tags --always)" \
#          --build-arg COMMIT="$(git rev-parse HEAD)" -t nextbest .
# Run:   nextbest keys create --keys keys.yaml --name ops --scope decide,events,profiles,admin
#        docker run -p 8080:8080 -v nextbest-data:/data -e NEXTBEST_API_KEYS="$(cat keys.yaml)" nextbest
# Every flag of serve has a NEXTBEST_* variable (nextbest serve --help);
# the image sets only NEXTBEST_ADDR, NEXTBEST_CATALOG and NEXTBEST_DATA,
# and passes no flags, so -e overrides any of them. The server refuses to
# start without API keys (NEXTBEST_API_KEYS, or a mounted file named by
# NEXTBEST_KEYS_FILE); public keys also need NEXTBEST_TOKEN_SECRET. TLS:
# mount a certificate and set NEXTBEST_TLS_CERT and NEXTBEST_TLS_KEY.
#
# Base images are pinned by digest, with the tag beside it for readers.
# The digests were taken from public Dockerfiles pinning the same tags and
# could not be checked against the registries where this was written (no
# docker engine): before a release, check or refresh them with
#   docker buildx imagetools inspect golang:1.26-bookworm
#   docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot
FROM golang:1.26-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d AS build
ARG VERSION=""
ARG COMMIT=""
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/nextbest ./cmd/nextbest \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
COPY --from=build /out/nextbest /usr/local/bin/nextbest
COPY --from=build /src/examples /examples
COPY --from=build --chown=65532:65532 /out/data /data
ENV NEXTBEST_ADDR=0.0.0.0:8080 \
    NEXTBEST_CATALOG=/examples/retail/catalog.yaml \
    NEXTBEST_DATA=/data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
# No shell or curl in the image: the binary asks GET /healthz itself, on
# the address (and TLS) the server was given.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/nextbest", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/nextbest"]
CMD ["serve"]
