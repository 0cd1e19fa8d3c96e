/* fuzz_llama2c.c - libFuzzer target: the llama2.c model loader. The first
 * four bytes choose where the input splits into model and tokenizer. */
#include "model/model.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    uint32_t split;
    memcpy(&split, data, 4);
    data += 4;
    size -= 4;
    split = size ? split % (uint32_t)(size + 1) : 0;
    sm_model *m = NULL;
    if (sm_model_load_buffers(data, split, data + split, size - split, &m, NULL) == SM_OK) {
        sm_token t[64];
        size_t n;
        sm_tokenize(m, "Once upon a time", 16, 1, t, 64, &n, NULL);
        sm_model_free(m);
    }
    return 0;
}
