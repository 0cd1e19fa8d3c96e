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
# A host that runs AVX-512 with VNNI itself has run the avx512 level in the
# suite already (parity and architecture tests included); what the
# emulation adds there is what the host lacks (BF16), which the unit tests
# compare with the reference. Keeps CI within its time on such hosts.
if grep -qw avx512f /proc/cpuinfo && grep -qw avx512_vnni /proc/cpuinfo; then
    echo "emu_test: this CPU runs AVX-512 with VNNI natively and the suite ran that level: the parity and architecture tests are not run again here"
else
    tally_run bash tests/parity_test.sh
    ARCH_STRICT=1 tally_run bash tests/arch_test.sh
fi
tally_end
