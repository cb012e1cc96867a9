# driftd in a container (docker-compose.yml builds it). The embedded ClickHouse engine is
# not included: in a container, driftd writes to a ClickHouse server.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/driftd ./cmd/driftd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/driftd /usr/local/bin/driftd
COPY driftd.example.yaml /etc/driftd/driftd.example.yaml
USER nonroot
ENTRYPOINT ["/usr/local/bin/driftd"]
CMD ["run"]
