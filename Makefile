# galley's developer entry points. `make help` lists them.

GO        ?= go
BIN       ?= bin/galley
PKGS      ?= ./...
# Real client tools (registry, cosign v2/v3, oras, crane, promtool, helm,
# kustomize, golangci-lint, fluxpull) and the real cluster the
# end-to-end tests deploy to (etcd, kube-apiserver, kubectl, the Flux
# controllers, Argo CD, miniredis; see docs/e2e.md) are built once per machine
# into this cache from the pins in tools/*/go.mod; see scripts/install-tools.sh.
export GALLEY_TOOLS_DIR ?= $(HOME)/.cache/galley/tools
# Fuzz targets run for this long each in `make test` (CI): long enough to
# exercise the seeds and some mutations, short enough for the suite budget.
FUZZTIME  ?= 8s

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the galley binary into bin/
	$(GO) build -trimpath -o $(BIN) ./cmd/galley

.PHONY: tools
tools: ## Build the pinned real clients the tests drive (once per machine)
	scripts/install-tools.sh

.PHONY: test
test: tools ## Run every test (unit, golden, real charts, real registry and clients, CLI scripts, fuzzing), then lint; fails if a golden file or script expectation is stale
	GO=$(GO) scripts/test-update.sh -count=1 -timeout 30m $(PKGS)
	$(MAKE) fuzz
	$(MAKE) lint

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (untar, archives, references, CUE, signatures, cron, the object codec)
	GO=$(GO) scripts/fuzz.sh ./bundles FuzzUntar $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh ./bundles FuzzReadTree $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh ./bundles/sign FuzzSignatureManifest $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh ./compiler/helm FuzzReadArchive $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh ./compiler/manifest FuzzCodec $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh ./compiler/stack FuzzLoad $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh ./compiler/stack FuzzCUEString $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh ./compiler/jobs FuzzParseSchedule $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh ./registry FuzzParseReference $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh ./registry/airgap FuzzOpenArchive $(FUZZTIME)

.PHONY: update
update: tools ## Rewrite every golden file and script expectation (GALLEY_UPDATE=1); fails if any other assertion fails
	GALLEY_UPDATE=1 $(GO) test -count=1 -timeout 30m $(PKGS)

.PHONY: lint
lint: ## golangci-lint, pinned in tools/golangci-lint (.golangci.yml: gofmt, vet, staticcheck, errcheck, errorlint, gosec, misspell, revive, unparam)
	scripts/install-tools.sh golangci-lint
	$$(scripts/tool-path.sh golangci-lint) run $(PKGS)

# `make bench` flags, e.g. BENCHFLAGS="-runs 9 -max-load 0.5 -o bench.txt"
# (go run ./bench/compare -h lists them).
BENCHFLAGS ?=
# `make bench-go` runs the benchmarks matching BENCH in BENCHPKGS.
BENCH      ?= .
BENCHPKGS  ?= ./compiler/... ./bundles/... ./registry/...

.PHONY: bench
bench: ## Time galley build/push against the helm+kustomize+tar+oras script it replaces (see BENCHMARKS.md)
	scripts/install-tools.sh helm kustomize oras registry
	$(GO) run ./bench/compare $(BENCHFLAGS)

.PHONY: bench-go
bench-go: ## Run the Go benchmarks (render, patch, pack, push, pull, compile, scaling) with -benchmem
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem $(BENCHPKGS)

.PHONY: example
example: ## Compile the example stack into build/data-platform
	$(GO) run ./cmd/galley bundle build examples/data-platform

.PHONY: clean
clean: ## Remove build outputs
	rm -rf bin build
