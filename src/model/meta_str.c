/* meta_str.c - reading one string-valued metadata entry of a loaded model
 * (e.g. tokenizer.chat_template) without copying it. */
#include "model.h"

int sm_model_meta_str(const sm_model *m, const char *key, const char **str, size_t *len) {
    if (!m || !key || m->kind != SM_FORMAT_GGUF) return 0;
    sm_gguf_str s;
    int r = sm_gguf_get_str(&m->gguf, key, &s);
    if (r != 1) return r;
    if (s.len > (uint64_t)SIZE_MAX) return -1;
    if (str) *str = s.ptr;
    if (len) *len = (size_t)s.len;
    return 1;
}
