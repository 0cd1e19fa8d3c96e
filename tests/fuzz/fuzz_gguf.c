/* fuzz_gguf.c - libFuzzer target: the GGUF reader and the model loader on
 * arbitrary bytes; when a model loads, its tokenizer and introspection run
 * too. Build with `make fuzz`. */
#include "model/model.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sm_gguf g;
    if (sm_gguf_parse(data, size, &g, NULL) == SM_OK) sm_gguf_free(&g);
    sm_model *m = NULL;
    if (sm_model_load_buffers(data, size, NULL, 0, &m, NULL) == SM_OK) {
        sm_token t[64];
        size_t n;
        const char *text = "Hello world, caf\xc3\xa9 \xf0\x9f\xa6\x99!";
        if (sm_tokenize(m, text, strlen(text), 1, t, 64, &n, NULL) == SM_OK) {
            char buf[512];
            size_t len;
            sm_detokenize(m, t, n, buf, sizeof buf, &len, NULL);
        }
        char k[256], ty[64], v[512];
        for (int i = 0; i < sm_model_meta_count(m); i++) sm_model_meta(m, i, k, sizeof k, ty, sizeof ty, v, sizeof v);
        sm_tensor_info ti;
        for (int i = 0; i < sm_model_tensor_count(m); i++) sm_model_tensor(m, i, &ti);
        sm_model_free(m);
    }
    return 0;
}
