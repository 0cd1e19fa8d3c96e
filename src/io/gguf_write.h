/* gguf_write.h - writes GGUF v3 files: metadata, tensor infos, aligned
 * tensor data. The file is written as every SmallMind file is (core/outfile.h):
 * a regular file only, atomically (a temporary file beside the target, synced,
 * renamed over it), every write checked. */
#ifndef SM_IO_GGUF_WRITE_H
#define SM_IO_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include "smallmind.h"
#include "gguf.h"

typedef struct sm_gguf_writer sm_gguf_writer;

sm_gguf_writer *sm_gguf_writer_new(void);
void sm_gguf_writer_free(sm_gguf_writer *w);

/* Metadata. A failed allocation is remembered and reported by save. */
void sm_gguf_put_u32(sm_gguf_writer *w, const char *key, uint32_t v);
void sm_gguf_put_f32(sm_gguf_writer *w, const char *key, float v);
void sm_gguf_put_u64(sm_gguf_writer *w, const char *key, uint64_t v);
void sm_gguf_put_bool(sm_gguf_writer *w, const char *key, int v);
void sm_gguf_put_str(sm_gguf_writer *w, const char *key, const char *v);
void sm_gguf_put_str_array(sm_gguf_writer *w, const char *key, const char *const *v, size_t n);
void sm_gguf_put_f32_array(sm_gguf_writer *w, const char *key, const float *v, size_t n);
void sm_gguf_put_i32_array(sm_gguf_writer *w, const char *key, const int32_t *v, size_t n);
/* Copies an entry of a parsed file as it is. */
void sm_gguf_put_copy(sm_gguf_writer *w, const sm_gguf_kv *kv);

/* A tensor; data must stay valid until save. ne[0] varies fastest. */
void sm_gguf_add_tensor(sm_gguf_writer *w, const char *name, uint32_t type, int n_dims, const uint64_t *ne,
                        const void *data, size_t n_bytes);

sm_status sm_gguf_writer_save(sm_gguf_writer *w, const char *path, sm_error *err);

#endif
