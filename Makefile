# strata — the commands README.md gives, and the ones CI runs.
GO ?= go

.PHONY: all build test vet demo fuzz bench-l7

all: build

build:
	$(GO) build -o bin/strata ./cmd/strata

# test is what .ci/run runs: vet, then every test with the race detector.
test: vet
	$(GO) test -race -count=1 -timeout 15m ./...

vet:
	$(GO) vet ./...

demo:
	$(GO) run ./cmd/strata demo

# fuzz runs each native fuzz target for FUZZTIME (seed corpora run in test).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./internal/config/

bench-l7:
	bash bench/l7/run.sh
