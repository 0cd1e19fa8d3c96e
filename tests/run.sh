#!/usr/bin/env bash
# run.sh - runs every test suite and prints the combined closing line.
# Called by `make test` and `make sanitize` (BUILD selects the build).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
if [ ! -d "${SM_SHARED:-../shared}" ]; then
    echo "note: ../shared (fixtures beside the checkout) is absent: tests that need it are skipped"
fi
source tests/tally.sh
tally_run "$BUILD/unit_tests"
tally_run bash tests/cli_test.sh
tally_run bash tests/chat_test.sh
tally_run bash tests/chatcmd_test.sh
tally_run bash tests/parity_test.sh
tally_run bash tests/kquant_test.sh
# every architecture x weight type against llama.cpp and float64 (under the
# sanitizers F32 and one K-quant per architecture: that run is about memory safety, and Q8_0's
# integer paths run under it in the unit and CLI tests)
if [ "$BUILD" = build-san ]; then
    ARCH_STRICT=1 ARCH_TYPES="${ARCH_TYPES:-Q4_K}" tally_run bash tests/arch_test.sh
else
    ARCH_STRICT=1 tally_run bash tests/arch_test.sh
fi
# constrained generation: 20 schemas x 10 seeds (under the sanitizers, 2 seeds)
if [ "$BUILD" = build-san ]; then GRAMMAR_SEEDS=2 tally_run bash tests/grammar_test.sh
else tally_run bash tests/grammar_test.sh; fi
tally_run bash tests/speculative_test.sh
tally_run bash tests/profile_test.sh
tally_run bash tests/profile_tools_test.sh
tally_run bash tests/train_test.sh
tally_run bash tests/lora_test.sh
tally_run bash tests/mpi_test.sh
tally_run bash tests/install_test.sh
tally_run bash tests/serve_test.sh
tally_end
