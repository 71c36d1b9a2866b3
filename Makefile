# infisicalfs — build, test, benchmark and demo targets.
GO        ?= go
BIN       := bin/infisicalfs
PKGS      := ./...
FUZZTIME  ?= 20s
BENCHTIME ?= 1s

.PHONY: all build test lint vet fmt bench bench-short fuzz demo reliability clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/infisicalfs

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
