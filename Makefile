# The index of habits: each target is one command a newcomer can run.
# `make help` lists them.

SHELL       := /bin/bash
GO          ?= go
BIN         := bin/ecs-remediator
# The version of the binary and the packages (packaging/version.sh): tag
# vX.Y.Z gives X.Y.Z-1, N commits after it X.Y.(Z+1)-0.N.gHASH. `make
# VERSION=X.Y.Z` builds a release by hand.
VERSION     ?=
PKG_VR      := $(shell sh packaging/version.sh $(VERSION))
PKG_VERSION := $(word 1,$(PKG_VR))
PKG_RELEASE := $(word 2,$(PKG_VR))
FULL_VERSION := $(PKG_VERSION)-$(PKG_RELEASE)
COMMIT      ?= $(shell git rev-parse --short=7 HEAD 2>/dev/null || echo unknown)
LDFLAGS     := -s -w -X main.version=$(FULL_VERSION) -X main.commit=$(COMMIT)
GOFILES     := $(shell git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)
FUZZTIME    ?= 10s

.PHONY: help build run test test-unit lint fuzz bench e2e clean version

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/ecs-remediator
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ecs-remediator

run: build ## build, then show what apply would repair on this host (dry-run: changes nothing)
	./$(BIN) apply --dry-run

test: lint build ## everything CI runs: lint, unit and namespace tests (as root), short fuzzing
	ECS_REMEDIATOR_REQUIRE_NS=$${ECS_REMEDIATOR_REQUIRE_NS:-0} $(GO) test -count=1 -timeout 15m ./...
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

test-unit: ## the quick tests only (no root needed; namespace tests skip)
	$(GO) test -count=1 -short ./...

STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)

lint: ## gofmt, go vet and staticcheck (go install honnef.co/go/tools/cmd/staticcheck@v0.8.2)
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@test -x $(STATICCHECK) || { echo "staticcheck is not installed: go install honnef.co/go/tools/cmd/staticcheck@v0.8.2"; exit 1; }
	$(STATICCHECK) ./...

fuzz: ## run every fuzz target for FUZZTIME each (default 10s); a finding prints its input
	GO=$(GO) FUZZTIME=$(FUZZTIME) test/fuzz.sh

bench: build ## the daemon's figures as one Markdown table (as root; how long: docs/performance.md; BENCH_TRIALS, BENCH_IDLE shorten it)
	$(GO) run ./test/bench -bin $(BIN)

bench-go: ## the package benchmarks (go test -bench; as root: real iptables in namespaces)
	$(GO) test -run '^$$' -bench . -benchtime 20x ./pkg/...

version: ## print the version builds from this checkout get (VERSION-RELEASE)
	@echo $(FULL_VERSION)

clean: ## remove build output
	rm -rf bin dist

-include packaging/package.mk
