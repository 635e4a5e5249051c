# Packaging and end-to-end targets, included by the Makefile.
# Uses from the Makefile: GO, BIN (bin/ecs-remediator, built by `build`),
# PKG_VERSION, PKG_RELEASE (packaging/version.sh), LDFLAGS.
#
#   make rpm          dist/ecs-remediator-V-R.{x86_64,aarch64}.rpm (rpmbuild)
#   make deb          dist/ecs-remediator_V-R_{amd64,arm64}.deb (nfpm)
#   make release      both, SHA256SUMS, and signatures with RELEASE_GPG_KEY
#   make e2e-rootfs   build (once) the cached Debian rootfs the e2e suite boots
#   make e2e          the end-to-end suite: the RPM installed in a booted systemd container

NFPM_VERSION  := v2.45.0
NFPM          := bin/nfpm
NFPM_STAMP    := bin/.nfpm-$(NFPM_VERSION)
PKG_ARCHES    ?= amd64 arm64
E2E_TIMEOUT   ?= 20m

.PHONY: rpm deb packages release e2e e2e-rootfs nfpm

# nfpm as a pinned Go tool in ./bin (not in go.mod). v2.45.0: later releases
# need modules the Go proxy here does not serve.
$(NFPM_STAMP):
	GOBIN=$(CURDIR)/bin $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
	@touch $@

nfpm: $(NFPM_STAMP) ## install the pinned nfpm into bin/

# The binary for each architecture, built statically with the Makefile's
# LDFLAGS (version, commit) whatever the build machine's own architecture.
bin/ecs-remediator-linux-%: FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/ecs-remediator

.PHONY: FORCE
FORCE:

# What both packages carry besides the binaries: the man page, made by the
# host's binary from the commands' own help and the policy reference, and
# CHANGELOG.md rendered for each format (its Unreleased entry dated like
# the commit, so a rebuild gives the same package).
MAN_PAGE       := bin/ecs-remediator.8
CHANGELOG_RPM  := bin/changelog.rpm
CHANGELOG_DEB  := bin/changelog.Debian
CHANGELOG_DATE := $(shell git log -1 --format=%cs 2>/dev/null)

$(MAN_PAGE): build
	./$(BIN) __man >$@

$(CHANGELOG_RPM) $(CHANGELOG_DEB) &: FORCE
	@mkdir -p bin
	$(GO) run ./packaging/changelog -format rpm -version $(FULL_VERSION) $(if $(CHANGELOG_DATE),-date $(CHANGELOG_DATE)) >$(CHANGELOG_RPM)
	$(GO) run ./packaging/changelog -format deb -version $(FULL_VERSION) $(if $(CHANGELOG_DATE),-date $(CHANGELOG_DATE)) >$(CHANGELOG_DEB)

PKG_EXTRA := $(MAN_PAGE) $(CHANGELOG_RPM) $(CHANGELOG_DEB)

# RPMs with rpmbuild (packaging/rpm/ecs-remediator.spec): rpm 4.11 on
# Amazon Linux 2 verifies only the SHA-1 and MD5 digests rpmbuild writes
# and nfpm does not.
rpm: $(foreach a,$(PKG_ARCHES),bin/ecs-remediator-linux-$(a)) $(PKG_EXTRA) ## RPMs for x86_64 and aarch64 into dist/
	@mkdir -p dist
	@set -e; for arch in $(PKG_ARCHES); do \
	  sh packaging/rpm/build.sh $$arch $(PKG_VERSION) $(PKG_RELEASE) bin/ecs-remediator-linux-$$arch dist $(MAN_PAGE) $(CHANGELOG_RPM); \
	done

deb: $(NFPM_STAMP) $(foreach a,$(PKG_ARCHES),bin/ecs-remediator-linux-$(a)) $(PKG_EXTRA) ## debs for amd64 and arm64 into dist/
	@mkdir -p dist
	@set -e; for arch in $(PKG_ARCHES); do \
	  NFPM=$(NFPM) sh packaging/deb/build.sh $$arch $(PKG_VERSION) $(PKG_RELEASE) bin/ecs-remediator-linux-$$arch dist $(MAN_PAGE) $(CHANGELOG_DEB); \
	done

packages: rpm deb ## both

# A release from a clean dist/: both packages for both architectures,
# SHA256SUMS and, with RELEASE_GPG_KEY, signatures (packaging/release.sh).
release: ## dist/ for a release: RPMs, debs, SHA256SUMS; RELEASE_GPG_KEY=FILE signs the RPMs and SHA256SUMS (.asc)
	rm -rf dist
	$(MAKE) --no-print-directory packages
	sh packaging/release.sh dist

e2e-rootfs: ## build (once) the Debian rootfs e2e boots, cached in ECS_REMEDIATOR_E2E_CACHE (/var/cache/ecs-remediator-e2e)
	ECS_REMEDIATOR_E2E=1 $(GO) test -count=1 -timeout $(E2E_TIMEOUT) -run '^Test(Docker)?Rootfs$$' ./test/nspawn/

# The suite builds its own packages with packaging/rpm/build.sh and
# packaging/nfpm.yaml (what `make rpm` and `make deb` use) around the binary
# built here, plus a second, higher version for the upgrade scenario.
e2e: build $(NFPM_STAMP) e2e-rootfs ## end-to-end: install the RPM in a booted systemd container and run the scenarios (root)
	ECS_REMEDIATOR_E2E=1 ECS_REMEDIATOR_E2E_BINARY=$(CURDIR)/$(BIN) ECS_REMEDIATOR_E2E_NFPM=$(CURDIR)/$(NFPM) \
	  $(GO) test -count=1 -p 1 -timeout $(E2E_TIMEOUT) -v ./test/nspawn/ ./test/e2e/...
