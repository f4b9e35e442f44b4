# The commands people type. CI runs `make setup lint test` through .ci/run.
#
# Capturing needs CAP_NET_RAW and the tests create network namespaces, so `run` and `test`
# run their binaries as root: directly when you are root, else through sudo (cargo still
# builds as you).

CARGO ?= cargo
ARGS ?=
# Debian packages the build, the tests and the benchmarks need.
DEBS := iproute2 procps libcap2-bin clang-19 llvm-19 libbpf-dev netsniff-ng tcpdump tmux prometheus ethtool sudo dnsmasq netbase
ROOT := $(shell [ "$$(id -u)" -eq 0 ] && echo yes)
SUDO := $(if $(ROOT),,sudo)
TARGET_TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
RUNNER_VAR := CARGO_TARGET_$(shell echo '$(TARGET_TRIPLE)' | tr 'a-z-' 'A-Z_')_RUNNER
# Without sudo's SUDO_UID/SUDO_GID: the binary drops to the user that ran sudo, and the tests
# that want that set them (or run sudo) themselves.
RUNNER := $(if $(ROOT),,$(RUNNER_VAR)="sudo -E env -u SUDO_UID -u SUDO_GID -u SUDO_USER")

.PHONY: setup build run test bench lint fmt clean ebpf fuzz

## setup: install the Debian packages above (skipped when all are present)
setup:
	@dpkg -s $(DEBS) >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(DEBS); }
	@$(CARGO) fmt --version >/dev/null && $(CARGO) clippy --version >/dev/null

## ebpf: rebuild the committed eBPF object from its C source (clang-19)
# Built from the repository root with a relative path and the prefix mapped away, so the
# object is byte-identical wherever the tree lives and CI can check it is up to date.
ebpf:
	clang-19 -O2 -g -target bpf -I/usr/include/$(shell uname -m)-linux-gnu \
	  -fdebug-prefix-map=$(CURDIR)=. -Wall -Werror \
	  -c ebpf/src/filter.bpf.c -o ebpf/src/filter.bpf.o

## build: release build of the whole workspace
build:
	$(CARGO) build --release --workspace

## run: build and run the terminal UI on this host (ARGS="--flows -i eth0" to pass options)
run: build
	$(SUDO) ./target/release/traffic-counter $(ARGS)

## test: every unit, integration and end-to-end test (as root: they use network namespaces),
## then every deployment artefact's check (check-deploy)
test:
	$(RUNNER) $(CARGO) test --workspace
	$(MAKE) check-deploy

## bench: criterion benchmarks (per-frame cost with merging at 1k/50k/1M keys, per-tick cost
## at 2/8/32 workers, group matching, one UI tick with 1M talkers, writing a snapshot file),
## then the system benchmark beside tcpdump: trafgen into the release binary across a veth
## pair, two mixes, five runs each (bench/system.sh)
bench:
	$(CARGO) build --release --workspace
	$(CARGO) bench -p traffic-counter-capture --bench hot_path
	$(CARGO) bench -p traffic-counter-capture --bench groups
	$(CARGO) bench -p traffic-counter --bench tick
	$(CARGO) bench -p traffic-counter --bench snapshot_file
	$(SUDO) bench/system.sh 10 target/bench/system.md 5

## fuzz: run each cargo-fuzz target for FUZZ_SECONDS from the committed seeds (stable Rust,
## so libFuzzer coverage without a sanitizer); new inputs go to target/fuzz-corpus, each run's
## log to target/fuzz-log, a crashing input to fuzz/artifacts. A target that fails (a panic, an
## assertion, a crash) fails the make, with the end of its log.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := parse_and_count classic_rules ring_block tables classic_verdicts
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked --version 0.13.2
	@mkdir -p target/fuzz-log
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p target/fuzz-corpus/$$t && \
	  (cd fuzz && $(CARGO) fuzz run -s none $$t ../target/fuzz-corpus/$$t seeds/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1) > target/fuzz-log/$$t.log 2>&1; \
	  status=$$?; \
	  echo "$$t:"; grep -E 'Done [0-9]+ runs|stat::number_of_executed_units' target/fuzz-log/$$t.log; \
	  if [ $$status -ne 0 ]; then \
	    tail -n 40 target/fuzz-log/$$t.log; \
	    echo "fuzz target $$t failed (exit $$status); log: target/fuzz-log/$$t.log"; exit 1; \
	  fi; \
	done

## lint: formatting check and clippy with warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

## check-deploy: build the release binary, then check every deployment artefact in deploy/
## (systemd unit, Kubernetes manifests and image, Prometheus config and rules, Grafana
## dashboard); deploy/check.sh installs what it lacks and runs as root
.PHONY: check-deploy
check-deploy:
	$(CARGO) build --release -p traffic-counter
	$(SUDO) bash deploy/check.sh
