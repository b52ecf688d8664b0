# Cairn: a thin wrapper over CMake. Quick start: `make demo`, `make test`.
BUILD       ?= build
ASAN_BUILD  ?= build-asan
FUZZ_BUILD  ?= build-fuzz
JOBS        ?= $(shell nproc)
FUZZ_SECONDS ?= 30
CMAKE_FLAGS ?=

.PHONY: all deps build test test-unit test-asan fuzz faults demo demo-image bench install clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_WERROR=ON $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Every test: unit + integration on the normal build, unit again under
# ASan+UBSan, then a bounded fuzz run of each fuzz target.
test: build
	cd $(BUILD) && ctest --output-on-failure -j 2
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory fuzz

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCAIRN_WERROR=ON -DCAIRN_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -L unit

fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCAIRN_FUZZ=ON -DBUILD_TESTING=ON
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_dag fuzz_proto fuzz_http
	bash tests/fuzz/run.sh $(FUZZ_BUILD)/tests/fuzz/fuzz_dag $(FUZZ_SECONDS)
	if [ -x $(FUZZ_BUILD)/tests/fuzz/fuzz_proto ]; then bash tests/fuzz/run.sh $(FUZZ_BUILD)/tests/fuzz/fuzz_proto $(FUZZ_SECONDS); fi
	bash tests/fuzz/run.sh $(FUZZ_BUILD)/tests/fuzz/fuzz_http $(FUZZ_SECONDS)

# The long forms of the fault-injection scenarios (make test runs short ones).
faults: build
	CAIRN_BIN=$(CURDIR)/$(BUILD) FAULT_TASKS=500 FAULT_SCHED_KILLS=20 FAULT_WORKER_KILLS=10 \
	  bash tests/faults/ledger.sh
	CAIRN_BIN=$(CURDIR)/$(BUILD) FAULT_STDOUT_MB=2000 bash tests/faults/bigstdout.sh
	CAIRN_BIN=$(CURDIR)/$(BUILD) FAULT_DAMAGES=30 bash tests/faults/corrupt.sh

demo: build
	bash scripts/demo.sh $(BUILD)

# The iris pipeline from a container image: built offline from the host's
# packages, pushed to a docker-registry on loopback, run by reference.
demo-image: build
	bash scripts/demo-image.sh $(BUILD)

bench: build
	bash bench/run-all.sh $(BUILD)

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
