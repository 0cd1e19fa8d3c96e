/* fuzz_adapter.c - libFuzzer target: a LoRA adapter file (arbitrary bytes)
 * loaded against a fixed base of stories260K's shape (made once with
 * sm_model_init_file, so tests/refs/lora's adapters are valid seeds); when
 * one loads, a session applies it to a few tokens and merging is skipped
 * (it writes files). Build with `make fuzz`. */
#include "model/lora.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static sm_model *base;

static sm_model *get_base(void) {
    if (base) return base;
    char path[64];
    snprintf(path, sizeof path, "/tmp/sm-fuzz-adapter-base-%d.gguf", (int)getpid());
    sm_init_params ip = sm_init_default_params();
    ip.arch = "llama";
    ip.dim = 64;
    ip.n_layers = 5;
    ip.n_heads = 8;
    ip.n_kv_heads = 4;
    ip.ffn_dim = 172;
    ip.n_ctx = 64;
    ip.n_vocab = 512;
    if (sm_model_init_file(&ip, path, NULL) != SM_OK || sm_model_load(path, NULL, &base, NULL) != SM_OK) abort();
    unlink(path);
    return base;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sm_model *m = get_base();
    sm_adapter *a = NULL;
    if (sm_adapter_load_buffer(m, data, size, &a, NULL) == SM_OK) {
        sm_session_params sp = sm_session_default_params();
        sp.n_ctx = 16;
        sp.n_threads = 1;
        sm_adapter_info info;
        sm_adapter_get_info(a, &info);
        sp.lora_rank_max = info.max_rank;
        sm_session *s = NULL;
        if (sm_session_create(m, &sp, &s, NULL) == SM_OK) {
            sm_token t[3] = {1, 100, 200};
            if (sm_session_set_adapter(s, a, 0.5f, NULL) == SM_OK) sm_session_eval(s, t, 3, NULL);
            sm_session_free(s);
        }
        sm_adapter_free(a);
    }
    return 0;
}
