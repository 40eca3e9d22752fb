# Supercluster's front door. `make demo` and `make test` work as the first command after
# `git clone` on a fresh Debian 12 machine: both install what is missing, then build.
.PHONY: all deps build test demo bench asan fuzz model reference-check clean

BUILD_DIR ?= build/release
ASAN_DIR  ?= build/asan
FUZZ_DIR  ?= build/fuzz
JOBS      ?= $(shell nproc)
FUZZ_SECONDS ?= 60

all: build

deps:
	scripts/install-deps

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) --timeout 600

demo: build
	scripts/demo $(BUILD_DIR)/apps/supercluster/supercluster

bench: build
	bench/http/run.sh $(BUILD_DIR)/apps/supercluster/supercluster --rounds 3
	bench/router/run.sh $(BUILD_DIR)/apps/supercluster/supercluster --rounds 3
	bench/router/paired.sh $(BUILD_DIR)/apps/supercluster/supercluster
	bench/router/paired.sh $(BUILD_DIR)/apps/supercluster/supercluster --tier global --connections "16 64" --pairs 20
	bench/allocs/run.sh $(BUILD_DIR)
	bench/instructions/run.sh $(BUILD_DIR)/apps/supercluster/supercluster
	$(BUILD_DIR)/bench/model_scan/model_scan_bench
	$(BUILD_DIR)/bench/metrics/histogram_bench
	$(BUILD_DIR)/bench/router/balancer_bench
	bench/store/run.sh $(BUILD_DIR)
	bench/crypto/run.sh $(BUILD_DIR)
	scripts/install-deps --bench
	bench/engine/run.sh $(BUILD_DIR)

asan: deps
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_COMPILER=clang++ -DSUPERCLUSTER_SANITIZE=ON
	cmake --build $(ASAN_DIR) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_DIR) --output-on-failure -j $(JOBS) --timeout 900

fuzz: deps
	cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_COMPILER=clang++ -DSUPERCLUSTER_FUZZ=ON -DSUPERCLUSTER_TESTS=OFF
	cmake --build $(FUZZ_DIR) -j $(JOBS)
	tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS)

# The forward-pass oracle (tools/reference, PyTorch) checked against a second formulation of
# itself; run when the reference or the fixtures in tests/data/forward change.
reference-check: build
	tools/reference/self_check.sh $(BUILD_DIR)/apps/supercluster/supercluster

# Retrains the bundled demonstration model and exports models/kjv/kjv.gguf (about an hour on
# 2 cores; see models/kjv/MODEL_CARD.md). Not part of test or demo: the trained file is
# committed.
model:
	scripts/install-deps --train
	tools/kjv_model/train.sh

clean:
	rm -rf build
