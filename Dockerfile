# Parley: one static binary (pure-Go SQLite, no cgo).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -tags prod: no `parley dev` / `parley sim`, so neither the simulated
# Messenger nor Temporal's test suite is linked in (cmd/parley/dev.go).
RUN CGO_ENABLED=0 go build -trimpath -tags prod -ldflags="-s -w" -o /out/parley ./cmd/parley
# The data folder (and its blob folder, a volume shared by the API and the
# worker in docker-compose.yml) belongs to the nonroot user that runs Parley.
RUN mkdir -p /out/data/blobs

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/parley /usr/local/bin/parley
COPY --from=build --chown=65532:65532 /out/data /data
ENV PARLEY_DATA_DIR=/data PARLEY_HTTP_ADDR=0.0.0.0:8080
VOLUME /data
EXPOSE 8080
# Compose's health checks run `parley healthcheck URL` (no shell or curl here).
ENTRYPOINT ["/usr/local/bin/parley"]
CMD ["serve"]
