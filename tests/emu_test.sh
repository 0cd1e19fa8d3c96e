#!/usr/bin/env bash
# emu_test.sh - the AVX-512 kernels on a host without AVX-512, in the build
# `make emu-test` makes (build-emu: their intrinsics emulated, the CPU taken
# to have AVX-512): the unit tests, the float64 parity test on every kernel
# level, and every weight type on the architectures whose shapes differ for
# the kernels against llama.cpp and float64, the models running on the
# avx512 level. Prints the combined closing line.
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
    # every weight type on the avx512 level, on the models whose shapes differ for the kernels (the other
    # architectures differ above them, and the suite ran each on this host's levels): grouped and
    # multi-query heads, heads wider than the stream, fused QKV and gate+up, partial RoPE, llama-quantize's
    # mixes, expert slices of interleaved stacks; the gradient checks of those shapes too
    # the mixed-precision checks only where the CPU has BF16 itself (tests/parity_test.sh says why)
    mixed=0; grep -qw avx512_bf16 /proc/cpuinfo && mixed=1
    PARITY_MIXED=$mixed PARITY_SOFT=${PARITY_SOFT:-"grad_qwen3_wide_heads lora_phi3_q8_0_recompute grad_gemma lora_gptneox_q8_0_recompute"} \
        tally_run bash tests/parity_test.sh
    ARCH_MODELS=${ARCH_MODELS:-"llama llama_tied gpt2 qwen3 gemma phi3 stablelm llama_moe qwen2moe"} ARCH_STRICT=1 \
        tally_run bash tests/arch_test.sh
fi
tally_end
