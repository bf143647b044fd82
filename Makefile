# evproxy developer commands. README.md documents `make run` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 10s

.PHONY: run test unit fuzz bench build lint docker

## run: start evproxy with the shipped config.hcl (embedded development broker)
run:
	$(GO) run ./cmd/evproxy run -c config.hcl --log-format console

## test: vet, the whole test suite with the race detector, then a short fuzz run per decoder
test: lint unit fuzz

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZTIME) ./internal/proxy
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/recordbatch
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/config

## bench: throughput and latency, direct vs through evproxy (docs/benchmarks.md)
bench:
	$(GO) run ./cmd/evproxy-bench

## build: static binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/evproxy ./cmd/evproxy

## lint: formatting and vet
lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

docker:
	docker build -t evproxy:$(VERSION) .
