#!/usr/bin/env bash
# emu_test.sh - the AVX-512 kernels on a host without AVX-512, in the build
# `make emu-test` makes (build-emu: their intrinsics emulated, the CPU taken
# to have AVX-512): the unit tests, the float64 parity test on every kernel
# level, and every architecture x weight type against llama.cpp and
# float64, the models running on the avx512 level. Prints the combined
# closing line.
set -u
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build-emu}
source tests/tally.sh
tally_run "$BUILD/unit_tests"
tally_run bash tests/parity_test.sh
ARCH_STRICT=1 tally_run bash tests/arch_test.sh
tally_end
