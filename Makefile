# discdiff: thin wrapper over scripts/install-deps.sh and the CMake presets
# (CMakePresets.json). Everything here is also doable by hand, see docs/building.md.
#
#   make demo    install deps, build the discdiff program (release), train a small MD4
#                model on the synthetic source (~1 min), print its bound beside the
#                source's entropy, samples, test-split bounds and a plot (scripts/demo.sh)
#   make test    install deps; release build + ctest (unit, thrust, examples, README
#                snippet, install + find_package consumer); ASan+UBSan debug build +
#                ctest; CUDA build (compile only; its tests self-skip without a GPU)
#                when /usr/local/cuda/bin/nvcc exists
#   make bench   build and run the Google Benchmark suites (BENCH_ARGS=... passed on)
#   make clean   remove the build directories
#
# Variables: JOBS (parallel jobs, default 2), NVCC, BENCH_ARGS, SKIP_DEPS=1.
SHELL := /bin/bash
MAKEFLAGS += --no-print-directory
.DEFAULT_GOAL := help

JOBS       ?= 2
NVCC       ?= /usr/local/cuda/bin/nvcc
BENCH_ARGS ?=
SKIP_DEPS  ?=

BUILD_RELEASE := build
BUILD_DEBUG   := build-debug
BUILD_CUDA    := build-cuda
CTEST_FLAGS   := -j $(JOBS) --output-on-failure

.PHONY: help deps demo test test-release test-debug test-cuda test-summary consumer \
        release debug cuda bench clean

help:
	@sed -n '1,14p' Makefile | sed 's/^# \{0,1\}//'

deps:
ifeq ($(SKIP_DEPS),)
	@bash scripts/install-deps.sh
endif

# ------------------------------------------------------------------ builds
release: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

debug: deps
	cmake --preset debug
	cmake --build --preset debug -j $(JOBS)

cuda: deps
	cmake --preset cuda
	cmake --build --preset cuda -j $(JOBS)

# ------------------------------------------------------------------ demo
demo: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS) --target discdiff_app
	bash scripts/demo.sh $(BUILD_RELEASE)

# ------------------------------------------------------------------ tests
# Each stage writes <build dir>/make-test.log; test-summary adds them up. Every
# stage runs even if an earlier one failed; `make test` fails if any did.
test: deps
	@rm -f $(BUILD_RELEASE)/make-test.status $(BUILD_DEBUG)/make-test.status $(BUILD_CUDA)/make-test.status; \
	status=0; start=$$(date +%s); \
	$(MAKE) --no-print-directory SKIP_DEPS=1 test-release || status=1; \
	$(MAKE) --no-print-directory SKIP_DEPS=1 test-debug   || status=1; \
	$(MAKE) --no-print-directory SKIP_DEPS=1 test-cuda    || status=1; \
	$(MAKE) --no-print-directory test-summary TEST_START=$$start; \
	exit $$status

# stage(name, dir, commands): times the stage and keeps its log for the summary.
define stage
	@mkdir -p $(2); rm -f $(2)/make-test.log $(2)/make-test.status; \
	echo "==== $(1)"; start=$$(date +%s); \
	( set -o pipefail; { $(3) ; } 2>&1 | tee $(2)/make-test.log ); rc=$$?; \
	echo "$$rc $$(( $$(date +%s) - start ))" > $(2)/make-test.status; \
	echo "==== $(1): $$( [ $$rc -eq 0 ] && echo ok || echo FAILED ) in $$(( $$(date +%s) - start )) s"; \
	exit $$rc
endef

test-release: deps
	$(call stage,release: build + ctest [unit thrust examples docs install-consumer],$(BUILD_RELEASE),\
	  cmake --preset release && cmake --build --preset release -j $(JOBS) && \
	  ctest --preset release $(CTEST_FLAGS))

test-debug: deps
	$(call stage,debug: ASan+UBSan build + ctest,$(BUILD_DEBUG),\
	  cmake --preset debug && cmake --build --preset debug -j $(JOBS) && \
	  ctest --preset debug $(CTEST_FLAGS))

test-cuda: deps
ifneq ($(wildcard $(NVCC)),)
	$(call stage,cuda: build [sm_90] + CUDA tests [self-skip without a GPU],$(BUILD_CUDA),\
	  cmake --preset cuda -DCMAKE_CUDA_COMPILER=$(NVCC) && \
	  cmake --build --preset cuda -j $(JOBS) && \
	  ctest --preset cuda $(CTEST_FLAGS))
else
	@echo "==== cuda: skipped ($(NVCC) not found)"
endif

# Sums the "N% tests passed, F tests failed out of T" lines of the stages (tests that
# skipped themselves are counted apart); a stage that failed before ctest's closing
# line (configure or build error) counts as 1 failed.
test-summary:
	@passed=0; failed=0; skipped=0; \
	for d in $(BUILD_RELEASE) $(BUILD_DEBUG) $(BUILD_CUDA); do \
	  [ -f $$d/make-test.status ] || continue; \
	  read rc secs < $$d/make-test.status; \
	  line=$$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' $$d/make-test.log | tail -n 1); \
	  if [ -n "$$line" ]; then \
	    f=$$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<< "$$line"); \
	    t=$$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<< "$$line"); \
	    k=$$(grep -cE '^[[:space:]]+[0-9]+ - .* \((Skipped|Disabled)\)$$' $$d/make-test.log || true); \
	    passed=$$((passed + t - f - k)); failed=$$((failed + f)); skipped=$$((skipped + k)); \
	    printf '  %-12s %s (%s s)\n' "$$d:" "$$line" "$$secs"; \
	  elif [ "$$rc" != 0 ]; then \
	    failed=$$((failed + 1)); \
	    printf '  %-12s configure/build FAILED (exit %s, %s s), see %s\n' "$$d:" "$$rc" "$$secs" "$$d/make-test.log"; \
	  fi; \
	done; \
	if [ -n "$(TEST_START)" ]; then echo "  total:       $$(( $$(date +%s) - $(TEST_START) )) s"; fi; \
	echo "$$passed passed, $$failed failed, $$skipped skipped"

# Install into a temporary prefix and build examples/consumer against it (the
# CTest install.consumer does the same inside `make test`).
consumer: release
	cmake -DDISCDIFF_BINARY_DIR=$(CURDIR)/$(BUILD_RELEASE) \
	  -DCONSUMER_SOURCE_DIR=$(CURDIR)/examples/consumer \
	  -DWORK_DIR=$(CURDIR)/$(BUILD_RELEASE)/examples/consumer-test \
	  -P cmake/ConsumerTest.cmake

# ------------------------------------------------------------------ benchmarks
bench:
ifeq ($(SKIP_DEPS),)
	@bash scripts/install-deps.sh --bench
endif
	cmake --preset release "-DDISCDIFF_BENCH_ARGS=$(BENCH_ARGS)"
	cmake --build --preset release -j $(JOBS) --target run_bench

clean:
	rm -rf $(BUILD_RELEASE) $(BUILD_DEBUG) $(BUILD_CUDA)
