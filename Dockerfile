# syntax=docker/dockerfile:1
# Multi-stage build: a static nextbest binary on a distroless base, run as
# a non-root user. Build: docker build -t nextbest .
# Run:   nextbest keys create --keys keys.yaml --name ops --scope decide,events,profiles,admin
#        docker run -p 8080:8080 -v nextbest-data:/data -e NEXTBEST_API_KEYS="$(cat keys.yaml)" nextbest
# The server refuses to start without API keys (NEXTBEST_API_KEYS, or a
# mounted file named by NEXTBEST_KEYS_FILE); public keys also need
# NEXTBEST_TOKEN_SECRET. TLS: mount a certificate and set
# NEXTBEST_TLS_CERT and NEXTBEST_TLS_KEY.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/nextbest ./cmd/nextbest \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/nextbest /usr/local/bin/nextbest
COPY --from=build /src/examples /examples
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/nextbest"]
CMD ["serve", "--addr", "0.0.0.0:8080", "--catalog", "/examples/retail/catalog.yaml", "--data", "/data"]
