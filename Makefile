# evproxy developer commands. README.md documents `make run` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 10s

.PHONY: run test unit plugin-tests fuzz bench build lint docker

## run: start evproxy with the shipped config.hcl (embedded development broker)
run:
	$(GO) run ./cmd/evproxy run -c config.hcl --log-format console

## test: build the example plugins, vet, the whole suite with the race
## detector (evproxy, then the plugin kit and examples), short fuzz runs
test: plugins lint unit plugin-tests fuzz

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

# The plugin kit, the examples and the ABI check are modules of their own.
PLUGIN_MODULES := plugins/sdk/go $(patsubst %/go.mod,%,$(wildcard plugins/examples/*/go.mod))
plugin-tests:
	@set -e; for m in $(PLUGIN_MODULES); do echo "go test -race ./... in $$m"; (cd $$m && $(GO) test -race -count=1 ./...); done
	cd plugins/abicheck && CI=true $(GO) test -count=1 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./internal/proxy
	$(GO) test -run '^$$' -fuzz '^FuzzSkipTags$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./internal/proxy
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./internal/recordbatch
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./internal/config
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./internal/batchcodec
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeVerdicts$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./internal/plugins
	$(GO) test -run '^$$' -fuzz '^FuzzInstrument$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./internal/plugins
	$(GO) test -run '^$$' -fuzz '^FuzzToRecordBatch$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./internal/messageset
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeHeaders$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./internal/outbox
	cd plugins/sdk/go && $(GO) test -run '^$$' -fuzz '^FuzzDecodeBatch$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s .
	cd plugins/sdk/go && $(GO) test -run '^$$' -fuzz '^FuzzRoundTrip$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s .
	cd plugins/sdk/go && $(GO) test -run '^$$' -fuzz '^FuzzDecodeVerdicts$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./evptest
	cd plugins/sdk/go && $(GO) test -run '^$$' -fuzz '^FuzzGet$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./jsonf
	cd plugins/sdk/go && $(GO) test -run '^$$' -fuzz '^FuzzSet$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./jsonf
	cd plugins/sdk/go && $(GO) test -run '^$$' -fuzz '^FuzzUnquote$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./jsonf

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

## plugins: build the example plugins into plugins/examples/<name>/<name>.wasm
## (Go examples with the wasip1 port of Go; C examples with clang, installed by .ci/run)
PLUGIN_CC     ?= clang
PLUGINS_GO    := $(patsubst plugins/examples/%/go.mod,%,$(wildcard plugins/examples/*/go.mod))
PLUGINS_C     := $(patsubst plugins/examples/%/,%,$(dir $(wildcard plugins/examples/*/*.c)))
PLUGIN_CFLAGS ?= -O2 -Wall -Wextra

.PHONY: plugins $(PLUGINS_GO:%=plugin-%) $(PLUGINS_C:%=plugin-%)
plugins: $(PLUGINS_GO:%=plugin-%) $(PLUGINS_C:%=plugin-%)

$(PLUGINS_GO:%=plugin-%): plugin-%:
	cd plugins/examples/$* && GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $*.wasm .

$(PLUGINS_C:%=plugin-%): plugin-%:
	$(PLUGIN_CC) --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor $(PLUGIN_CFLAGS) \
		-Wl,--stack-first -Wl,--strip-debug -o plugins/examples/$*/$*.wasm plugins/examples/$*/*.c
