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
# the architecture gradient checks: all of them; under the sanitizers (memory safety) one per kind of
# trainer path (parallel blocks, post-norms and local RoPE, soft caps, fused QKV with LongRoPE, NoPE,
# YaRN, multi-query attention, granite's scales, blocks without pre-norms, q/k norms after RoPE, squared ReLU, ALiBi
# with the embeddings' norm), as
# PARITY_SOFT selects
if [ "$BUILD" = build-san ]; then
    PARITY_SOFT="${PARITY_SOFT:-grad_gptneox_parallel_two_norms grad_gemma3 grad_gemma2_softcaps lora_phi3_tied_partial_longrope grad_smollm3_nope_layer lora_rope_yarn_qwen2 grad_starcoder_mqa lora_granite_q8_0_recompute lora_exaone4_post_norms grad_hunyuan_qk_norm_after_rope grad_nemotron_relu2 grad_bloom_alibi_embd_norm}" \
        tally_run bash tests/parity_test.sh
else
    tally_run bash tests/parity_test.sh
fi
[ "$BUILD" = build-san ] || tally_run bash tests/kquant_test.sh
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
# under the sanitizers, not these three (CI's time on a 2-core Zen 3, about 3 minutes): the profile
# tools (a minute of profiled runs either way; the profile JSON reader is fuzzed under ASan,
# fuzz_profile_json), and below the K-quant file checks (their kernels are the unit tests', which run
# under the sanitizers) and the server's tool-calling section (its parser and templates fuzzed under
# ASan: fuzz_server_util, fuzz_jinja)
[ "$BUILD" = build-san ] || tally_run bash tests/profile_tools_test.sh
tally_run bash tests/train_test.sh
tally_run bash tests/lora_test.sh
tally_run bash tests/mpi_test.sh
tally_run bash tests/install_test.sh
tally_run bash tests/bench_scripts_test.sh
if [ "$BUILD" = build-san ]; then
    tally_run bash tests/serve_test.sh -tools
else tally_run bash tests/serve_test.sh; fi
tally_end
