# Multi-stage build: a static evproxy binary on a minimal, non-root image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/evproxy ./cmd/evproxy

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/evproxy /usr/local/bin/evproxy
COPY config.hcl /etc/evproxy/config.hcl
USER nonroot:nonroot
EXPOSE 9092 9644
ENTRYPOINT ["/usr/local/bin/evproxy"]
CMD ["run", "-c", "/etc/evproxy/config.hcl"]
