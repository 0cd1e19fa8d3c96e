/* identity.c - the identity of a loaded model (sm_model_id), which saved
 * sessions carry so that a session is never loaded into another model: a
 * 64-bit hash of the file's header (GGUF: metadata and tensor table;
 * llama2.c: its 7-integer header and the tokenizer file), the file's size,
 * and 16 blocks of 4 KiB of weights spread over the file, so that two
 * models of the same shape and metadata (two `init` seeds) differ too. */
#include "model.h"
#include "core/hash.h"

#define SAMPLE_BLOCKS 16
#define SAMPLE_BYTES 4096

void sm_model_compute_id(sm_model *m, const void *data, size_t size, const void *tok, size_t tok_size) {
    const unsigned char *d = data;
    size_t header = m->kind == SM_FORMAT_GGUF ? (size_t)m->gguf.data_offset : 28;
    if (header > size) header = size;
    uint64_t h = sm_fnv1a(SM_FNV_OFFSET, d, header);
    if (tok && tok_size) h = sm_fnv1a(h, tok, tok_size);
    uint64_t sz = size;
    h = sm_fnv1a(h, &sz, sizeof sz);
    size_t body = size - header;
    for (size_t b = 0; b < SAMPLE_BLOCKS && body > 0; b++) {
        size_t at = header + (body > SAMPLE_BYTES ? (body - SAMPLE_BYTES) / (SAMPLE_BLOCKS - 1) * b : 0);
        size_t n = body < SAMPLE_BYTES ? body : SAMPLE_BYTES;
        h = sm_fnv1a(h, d + at, n);
    }
    m->id = h;
}

uint64_t sm_model_id(const sm_model *m) { return m ? m->id : 0; }
