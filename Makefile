# till — two commands on a fresh Debian machine:
#   make run    install what is missing, build (Release), start `till serve`
#   make test   install what is missing, build, run every test (unit, integration, fuzz)
#
# More: `make test-sanitize` (ASan+UBSan build of the unit and integration tests), `make fuzz`,
# `make bench` (../shared/bench/proxy-bench), `make bench-monitoring`, `make format`, `make clean`.

BUILD        ?= build
BUILD_SAN    ?= build-sanitize
BUILD_FUZZ   ?= build-fuzz
JOBS         ?= $(shell nproc)
FUZZ_RUNS    ?= 200000
TILL_ARGS    ?=

CMAKE_FLAGS  := -G Ninja -DCMAKE_EXPORT_COMPILE_COMMANDS=ON

.PHONY: deps build run test test-unit test-integration test-sanitize fuzz bench bench-monitoring format clean

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/till serve $(TILL_ARGS)

test: build
	@scripts/install-deps --browser
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	@$(MAKE) --no-print-directory fuzz

test-unit: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -L unit

test-integration: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -L integration

$(BUILD_SAN)/build.ninja:
	cmake -S . -B $(BUILD_SAN) $(CMAKE_FLAGS) -DCMAKE_BUILD_TYPE=Debug -DTILL_SANITIZE=ON

test-sanitize: deps $(BUILD_SAN)/build.ninja
	cmake --build $(BUILD_SAN) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(BUILD_SAN) --output-on-failure -j $(JOBS) -L 'unit|integration'

$(BUILD_FUZZ)/build.ninja:
	CC=clang-14 CXX=clang++-14 cmake -S . -B $(BUILD_FUZZ) $(CMAKE_FLAGS) \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTILL_FUZZ=ON -DTILL_WERROR=OFF

fuzz: deps $(BUILD_FUZZ)/build.ninja
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target fuzz_targets
	TILL_FUZZ_RUNS=$(FUZZ_RUNS) ctest --test-dir $(BUILD_FUZZ) --output-on-failure -L fuzz

bench: build
	@scripts/install-deps --bench
	../shared/bench/proxy-bench --till $(BUILD)/till

# Throughput and CPU per request with monitoring on against off (docs/monitoring.md, "Cost").
bench-monitoring: build
	@scripts/install-deps --bench
	scripts/bench-monitoring --till $(BUILD)/till

format:
	clang-format -i $$(git ls-files '*.h' '*.cc')

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
