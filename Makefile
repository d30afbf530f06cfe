# insitu — see README.md. Every target works on a fresh machine with Go.
GO      ?= go
BIN     ?= bin/insitu
PKGS    ?= ./...
BENCH   ?= .
BENCHTIME ?= 1s

.PHONY: all build install build-openblas build-aravis test test-openblas test-aravis fmt-check vet bench demo study compare reproduce fuzz image slurm-test docs clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/insitu

# Puts insitu on PATH, as the docs write it: into GOBIN when it is set
# (go install), else into PREFIX/bin (/usr/local/bin; make install
# PREFIX=$$HOME/.local for a user without root).
PREFIX ?= /usr/local
install: build
	@if [ -n "$(GOBIN)" ]; then \
		$(GO) install ./cmd/insitu && echo "installed $(GOBIN)/insitu"; \
	else \
		install -d "$(DESTDIR)$(PREFIX)/bin" && install -m 0755 $(BIN) "$(DESTDIR)$(PREFIX)/bin/insitu" && \
		echo "installed $(DESTDIR)$(PREFIX)/bin/insitu"; \
	fi

# The same binary with large matrix products in OpenBLAS (cgo; Debian's
# libopenblas-dev). See docs/performance.md. TAGS adds build tags:
# make build-openblas TAGS=aravis is both.
build-openblas:
	CGO_ENABLED=1 $(GO) build -tags "openblas $(TAGS)" -o $(BIN) ./cmd/insitu

# The surrogate and the loop under the openblas build.
test-openblas:
	CGO_ENABLED=1 $(GO) test -tags openblas -count=1 ./surrogate/... ./loop/...

# The binary with GenICam cameras (GigE Vision, USB3 Vision) through Aravis
# 0.8 (cgo; Debian's libaravis-dev, whose aravis-0.8.pc also needs
# libusb-1.0-0-dev). See docs/bench.md. make build-aravis TAGS=openblas
# is both.
ARAVIS_PC = @pkg-config --exists aravis-0.8 2>/dev/null || { \
	echo "Aravis 0.8 not found by pkg-config: apt-get install libaravis-dev libusb-1.0-0-dev pkg-config"; \
	pkg-config --print-errors --exists aravis-0.8; exit 1; }
build-aravis:
	$(ARAVIS_PC)
	CGO_ENABLED=1 $(GO) build -tags "aravis $(TAGS)" -o $(BIN) ./cmd/insitu

# The GenICam driver and the commands on it, against Aravis' fake GigE
# Vision camera on loopback (aravis-tools). Without libaravis or the fake
# camera they are skipped, or fail when CI is set.
test-aravis:
	@if ! pkg-config --exists aravis-0.8 2>/dev/null; then \
		if [ -n "$$CI" ]; then echo "test-aravis: Aravis 0.8 not found by pkg-config (libaravis-dev, libusb-1.0-0-dev)"; exit 1; fi; \
		echo "test-aravis: skipped: Aravis 0.8 not found by pkg-config (apt-get install libaravis-dev libusb-1.0-0-dev aravis-tools)"; exit 0; \
	fi; \
	CGO_ENABLED=1 $(GO) test -race -count=1 -tags aravis ./instruments/camera/... ./instruments/rig/... && \
	CGO_ENABLED=1 $(GO) test -race -count=1 -tags aravis -run 'GenICam|Camera|Probe' ./cmd/insitu/...

# gofmt check, go vet, then every test under the race detector.
test: fmt-check vet
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

fmt-check:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# Benchmarks of every hot path. Compare figures as ratios within one run:
# the machines are shared and noisy.
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem $(PKGS)

# Online GradPIE on the CNON twin: progress bar, journal and plot in
# runs/cnon-gradpie-s1-TIME/. About a minute on 2 cores.
demo: build
	./$(BIN) run configs/cnon.yaml

# The gradient-quality study on the CNON twin (table on stdout, CSV and PNG
# in out/study-gradient). About eight minutes on 2 cores.
study: build
	./$(BIN) study gradient configs/study-gradient.yaml --out out/study-gradient

# The CNON method comparison (5 seeds × N = 10, 20 × M = 0, 1 × 5 methods).
compare: build
	scripts/compare-cnon.sh runs/compare-cnon

# The paper-reproduction grid with its knob sweeps; the report and plots in
# out/reproduce-quick (resumable: run it again to continue); the ngspice
# op-amp task joins when ngspice is installed. It runs two cells at a time
# on the OpenBLAS build when libopenblas-dev is there (one OpenBLAS thread
# each), else on the pure-Go build. See README, Results, for its wall time.
REPRO_BIN = bin/insitu-reproduce
reproduce:
	@if CGO_ENABLED=1 $(GO) build -tags openblas -o $(REPRO_BIN) ./cmd/insitu 2>/dev/null; then \
		echo "reproduce: OpenBLAS build"; \
	else \
		echo "reproduce: no OpenBLAS (apt-get install libopenblas-dev): pure-Go build"; \
		$(GO) build -o $(REPRO_BIN) ./cmd/insitu; \
	fi
	OPENBLAS_NUM_THREADS=1 ./$(REPRO_BIN) reproduce --scale quick --out out/reproduce-quick

# A short run of every fuzz target (each gets FUZZTIME).
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# The container image: a static binary on distroless (deploy/docker/Dockerfile.ngspice adds ngspice).
image:
	docker build -t insitu:latest .

# deploy/slurm/reproduce.sbatch on a one-node Slurm cluster started here (root, Debian; about a minute).
slurm-test:
	bash .ci/slurm.sh

# The configuration reference, generated from the keys' doc and unit tags
# (a test fails when it is stale).
docs:
	$(GO) run ./cmd/insitu config keys --markdown > docs/reference/config.md.tmp
	mv docs/reference/config.md.tmp docs/reference/config.md

clean:
	rm -rf bin out runs
