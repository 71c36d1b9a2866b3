# infisicalfs — build, test, benchmark and demo targets.
GO        ?= go
BIN       := bin/infisicalfs
PKGS      := ./...
FUZZTIME  ?= 20s
BENCHTIME ?= 1s

# The version and commit stamped into the binary (`infisicalfs version`,
# `go version -m bin/infisicalfs` shows the -ldflags).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

# make install [PREFIX=/usr/local] [DESTDIR=staging]. mount(8) looks for
# helpers only in /sbin (and /sbin/fs.d, /sbin/fs), so SBINDIR stays
# /sbin whatever the prefix.
PREFIX    ?= /usr/local
DESTDIR   ?=
BINDIR    ?= $(PREFIX)/bin
SBINDIR   ?= /sbin
UNITDIR   ?= $(PREFIX)/lib/systemd/system
MANDIR    ?= $(PREFIX)/share/man
SHAREDIR  ?= $(PREFIX)/share

.PHONY: all build install test lint vet fmt bench bench-short fuzz demo reliability clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/infisicalfs

# The binary; the mount helper under both names mount(8) may look for
# (mount.infisicalfs for -t infisicalfs, mount.fuse.infisicalfs for
# -t fuse.infisicalfs), with the binary's absolute path written in, since
# mount(8) runs helpers with no PATH; the systemd unit; the man pages and
# bash/zsh/fish completions, generated from the binary's own flag table;
# a minimal example config (share/doc/infisicalfs/examples/config.toml).
install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(SHAREDIR)/bash-completion/completions $(DESTDIR)$(SHAREDIR)/zsh/site-functions \
	  $(DESTDIR)$(SHAREDIR)/fish/vendor_completions.d
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/infisicalfs
	sed 's|@BINARY@|$(BINDIR)/infisicalfs|' deploy/mount.infisicalfs > $(DESTDIR)$(SBINDIR)/mount.infisicalfs
	chmod 0755 $(DESTDIR)$(SBINDIR)/mount.infisicalfs
	ln -sf mount.infisicalfs $(DESTDIR)$(SBINDIR)/mount.fuse.infisicalfs
	sed 's|/usr/local/bin/infisicalfs|$(BINDIR)/infisicalfs|g' deploy/infisicalfs.service > $(DESTDIR)$(UNITDIR)/infisicalfs.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/infisicalfs.service
	$(BIN) gen-man $(DESTDIR)$(MANDIR)/man1
	$(BIN) completion bash > $(DESTDIR)$(SHAREDIR)/bash-completion/completions/infisicalfs
	$(BIN) completion zsh > $(DESTDIR)$(SHAREDIR)/zsh/site-functions/_infisicalfs
	$(BIN) completion fish > $(DESTDIR)$(SHAREDIR)/fish/vendor_completions.d/infisicalfs.fish
	install -d $(DESTDIR)$(SHAREDIR)/doc/infisicalfs/examples
	install -m 0644 testdata/config/example.toml $(DESTDIR)$(SHAREDIR)/doc/infisicalfs/examples/config.toml

# csi-sanity, the CSI conformance suite: TestCSISanity (./csi) runs it
# against the driver, and fails rather than skips when CSI_SANITY is set.
# .ci/run installs it (go install ...csi-sanity@v5.6.0).
CSI_SANITY ?= $(shell $(GO) env GOPATH)/bin/csi-sanity

# The README's test command: vet, formatting, then every test under the race
# detector. Mount tests skip without /dev/fuse unless REQUIRE_FUSE=1.
# The soak runs inside it for 30 s; bench-short runs every benchmark once.
test: lint
	CSI_SANITY=$(CSI_SANITY) $(GO) test -race -count=1 -timeout 8m $(PKGS)
	$(MAKE) --no-print-directory bench-short

lint: vet fmt

vet:
	$(GO) vet $(PKGS)

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# The paired benchmarks (infisicalfs next to tmpfs or the direct API, same
# run) into docs/bench.md and docs/bench.png; needs /dev/fuse. About 3 min.
bench:
	$(GO) run ./bench -benchtime $(BENCHTIME) -out docs

# CI's pass over the benchmarks: each once at the small sizes, so that they
# keep working and their request-count checks hold; the table goes to a
# temporary directory, not docs/.
bench-short:
	@out=$$(mktemp -d) && $(GO) run ./bench -short -benchtime 1x -out $$out >/dev/null && \
	  echo "bench-short: ok ($$out/bench.md)"

# Each fuzz target for FUZZTIME; go test -fuzz takes one target at a time.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# The fault-injection soak against a real mount for DURATION, then kill -9
# of the real binary mid-write; the summary goes to docs/reliability.md.
DURATION ?= 2m
reliability:
	SOAK_DURATION=$(DURATION) SOAK_REPORT=$(CURDIR)/docs/reliability.md \
	  $(GO) test -count=1 -run '^(TestSoak|TestTwoMountsNoLostUpdate)$$' -v -timeout 60m ./reliability/

# The built-in dev server plus a mount in ./mnt, in the foreground; Ctrl-C
# unmounts cleanly.
demo: build
	./scripts/demo.sh $(BIN)

clean:
	rm -rf bin
