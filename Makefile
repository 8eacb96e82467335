# strata — the commands README.md gives, and the ones CI runs.
GO ?= go

.PHONY: all build deps test vet demo fuzz stress bench-l7 bpf

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
	cd test/compat && $(GO) test -race -count=1 -timeout 10m ./...
	# The SDK races with itself when it reconnects (nacos2_reconnect_test.go)
	# and when a config client closes (nacos2_config_test.go): those tests
	# run without -race.
	cd test/compat && $(GO) test -count=1 -timeout 5m -run 'Reconnect|Config' ./...

vet:
	$(GO) vet ./...
	cd test/compat && $(GO) vet ./...
	cd bench/registry && $(GO) vet ./...

demo:
	$(GO) run ./cmd/strata demo

# fuzz runs every native fuzz target (found by grep in the _test.go files)
# for FUZZTIME each; the seed corpora run in test.
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) bash scripts/fuzz.sh

# stress runs each package's tests STRESSCOUNT times under the race
# detector, one package at a time (PKGS narrows it: PKGS=./internal/l4/).
STRESSCOUNT ?= 5
stress:
	STRESSCOUNT=$(STRESSCOUNT) GO=$(GO) bash scripts/stress.sh $(PKGS)

bench-l7:
	bash bench/l7/run.sh

# bpf recompiles the XDP programs (internal/l4/xdp/*.c) with clang into the
# objects and Go files that are committed, so building strata needs no clang.
bpf:
	$(GO) generate ./internal/l4/xdp/
