# Makefile: the two commands a new machine needs, `make demo` and `make test`, plus build, bench and clean.
# Every target first runs scripts/setup, which installs only what is missing (seconds when all is there).
SHELL := /bin/bash
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all setup configure build test demo bench fuzz sanitize clean

all: build

setup:
	@scripts/setup

configure: setup
	@if [ ! -f $(BUILD)/build.ninja ]; then cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release; fi

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest -j $(JOBS) --output-on-failure

demo: build
	@rm -rf $(BUILD)/demo
	@$(BUILD)/bin/distill demo --workdir $(BUILD)/demo

# Every parser of outside bytes under libFuzzer with ASan and UBSan (fuzz/), FUZZ_SECONDS each (default 60).
fuzz: setup
	@scripts/fuzz $(FUZZ_SECONDS)

# The torch-free half and its tests under ASan and UBSan, then each fuzz target briefly (CI runs this after test).
sanitize: setup
	@scripts/sanitize $(FUZZ_SECONDS)

bench: build
	@$(BUILD)/bin/bench_synth
	@$(BUILD)/bin/bench_generate
	@$(BUILD)/bin/bench_curation
	@$(BUILD)/bin/bench_train
	@$(BUILD)/bin/bench_attention
	@$(BUILD)/bin/bench_mfu
	@$(BUILD)/bin/bench_gemv
	@.venv/bin/python bench/bench_export_decode.py
	@.venv/bin/python bench/bench_remote_generate.py $(BUILD)/bin/distill models/demo-teacher

clean:
	rm -rf $(BUILD) build-fuzz
