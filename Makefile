# strata — the commands README.md gives, and the ones CI runs.
GO ?= go

.PHONY: all build deps test vet demo fuzz bench-l7 bpf

all: build

build:
	$(GO) build -o bin/strata ./cmd/strata

# deps installs the Debian packages the tests drive when any is missing.
deps:
	bash scripts/deps.sh

# test is what .ci/run runs: the tools, vet, then every test with the race
# detector. Under CI=true a test whose tool is missing fails.
test: deps vet
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

# bpf recompiles the XDP programs (internal/l4/xdp/*.c) with clang into the
# objects and Go files that are committed, so building strata needs no clang.
bpf:
	$(GO) generate ./internal/l4/xdp/
