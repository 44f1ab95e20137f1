# galley's developer entry points. `make help` lists them.

GO        ?= go
BIN       ?= bin/galley
PKGS      ?= ./...
# Real client tools (registry, cosign v2/v3, oras, crane, promtool, helm,
# kustomize, staticcheck, fluxpull) are built once per machine into this
# cache from the pins in tools/*/go.mod; see scripts/install-tools.sh.
export GALLEY_TOOLS_DIR ?= $(HOME)/.cache/galley/tools
# Fuzz targets run for this long each in `make test` (CI): long enough to
# exercise the seeds and some mutations, short enough for the suite budget.
FUZZTIME  ?= 10s

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
test: tools ## Run every test (unit, golden, real charts, real registry and clients, CLI scripts, fuzzing), then lint
	$(GO) test -count=1 -timeout 30m $(PKGS)
	$(MAKE) fuzz
	$(MAKE) lint

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME
	$(GO) test -run '^$$' -fuzz '^FuzzUntar$$' -fuzztime $(FUZZTIME) ./bundles
	$(GO) test -run '^$$' -fuzz '^FuzzReadTree$$' -fuzztime $(FUZZTIME) ./bundles
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./compiler/stack
	$(GO) test -run '^$$' -fuzz '^FuzzParseSchedule$$' -fuzztime $(FUZZTIME) ./compiler/jobs

.PHONY: update
update: ## Rewrite golden files and expected script outputs
	$(GO) test ./... -run . -update >/dev/null || true
	GALLEY_UPDATE=1 $(GO) test ./cmd/galley/cli -run TestScript

.PHONY: lint
lint: tools ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$$(scripts/tool-path.sh staticcheck) $(PKGS)

.PHONY: bench
bench: ## Run the Go benchmarks (render, patch, pack) with -benchmem
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

.PHONY: example
example: ## Compile the example stack into build/data-platform
	$(GO) run ./cmd/galley bundle build examples/data-platform

.PHONY: clean
clean: ## Remove build outputs
	rm -rf bin build
