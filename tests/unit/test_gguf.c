/* test_gguf.c - the GGUF reader on hand-built files, on every truncation of
 * a real file's header, and on hostile counts, offsets and types. */
#include "test.h"
#include "gguf_writer.h"
#include "io/gguf.h"
#include "model/model.h"

#include <stdlib.h>

TEST(gguf_every_metadata_type_and_tensor_layout) {
    gbuf b = {0};
    gb_header(&b, 3, 2, 16);
    gb_str(&b, "a.u8"); gb_u32(&b, 0); gb_u8(&b, 200);
    gb_str(&b, "a.i8"); gb_u32(&b, 1); gb_u8(&b, (uint8_t)-5);
    gb_str(&b, "a.u16"); gb_u32(&b, 2); { uint16_t v = 60000; gb_put(&b, &v, 2); }
    gb_str(&b, "a.i16"); gb_u32(&b, 3); { int16_t v = -30000; gb_put(&b, &v, 2); }
    gb_kv_u32(&b, "a.u32", 4000000000u);
    gb_str(&b, "a.i32"); gb_u32(&b, 5); { int32_t v = -2000000000; gb_put(&b, &v, 4); }
    gb_kv_f32(&b, "a.f32", 1.5f);
    gb_str(&b, "a.bool"); gb_u32(&b, 7); gb_u8(&b, 1);
    gb_kv_str(&b, "a.str", "hello");
    gb_str(&b, "a.u64"); gb_u32(&b, 10); gb_u64(&b, 1ull << 60);
    gb_str(&b, "a.i64"); gb_u32(&b, 11); { int64_t v = -(1ll << 50); gb_put(&b, &v, 8); }
    gb_str(&b, "a.f64"); gb_u32(&b, 12); { double v = 0.25; gb_put(&b, &v, 8); }
    gb_str(&b, "a.arr_i32"); gb_u32(&b, 9); gb_u32(&b, 5); gb_u64(&b, 3);
    for (int32_t v = 7; v < 10; v++) gb_put(&b, &v, 4);
    gb_str(&b, "a.arr_str"); gb_u32(&b, 9); gb_u32(&b, 8); gb_u64(&b, 2); gb_str(&b, "x"); gb_str(&b, "yz");
    gb_str(&b, "a.nested"); gb_u32(&b, 9); gb_u32(&b, 9); gb_u64(&b, 2);
    for (int k = 0; k < 2; k++) { gb_u32(&b, 0); gb_u64(&b, 2); gb_u8(&b, 1); gb_u8(&b, 2); }
    gb_kv_u32(&b, "general.alignment", 64);
    /* tensors: F32 [3, 2] at 0 and F16 [4] at 64 */
    gb_str(&b, "t.f32"); gb_u32(&b, 2); gb_u64(&b, 3); gb_u64(&b, 2); gb_u32(&b, 0); gb_u64(&b, 0);
    gb_str(&b, "t.f16"); gb_u32(&b, 1); gb_u64(&b, 4); gb_u32(&b, 1); gb_u64(&b, 64);
    gb_pad(&b, 64);
    size_t data_at = b.n;
    for (int i = 0; i < 6; i++) gb_f32(&b, (float)i);
    gb_pad(&b, 64);
    for (int i = 0; i < 4; i++) { uint16_t h = 0x3C00; gb_put(&b, &h, 2); }

    sm_gguf g;
    sm_error err = {0};
    REQUIRE(sm_gguf_parse(b.p, b.n, &g, &err) == SM_OK);
    int64_t iv;
    double fv;
    int bv;
    sm_gguf_str sv;
    CHECK(sm_gguf_get_int(&g, "a.u8", &iv) == 1 && iv == 200);
    CHECK(sm_gguf_get_int(&g, "a.i8", &iv) == 1 && iv == -5);
    CHECK(sm_gguf_get_int(&g, "a.u16", &iv) == 1 && iv == 60000);
    CHECK(sm_gguf_get_int(&g, "a.i16", &iv) == 1 && iv == -30000);
    CHECK(sm_gguf_get_int(&g, "a.u32", &iv) == 1 && iv == 4000000000ll);
    CHECK(sm_gguf_get_int(&g, "a.i32", &iv) == 1 && iv == -2000000000);
    CHECK(sm_gguf_get_float(&g, "a.f32", &fv) == 1 && fv == 1.5);
    CHECK(sm_gguf_get_bool(&g, "a.bool", &bv) == 1 && bv == 1);
    CHECK(sm_gguf_get_str(&g, "a.str", &sv) == 1 && sm_gguf_str_eq(sv, "hello"));
    CHECK(sm_gguf_get_int(&g, "a.u64", &iv) == 1 && iv == (1ll << 60));
    CHECK(sm_gguf_get_int(&g, "a.i64", &iv) == 1 && iv == -(1ll << 50));
    CHECK(sm_gguf_get_float(&g, "a.f64", &fv) == 1 && fv == 0.25);
    CHECK(sm_gguf_get_int(&g, "a.str", &iv) == -1);
    CHECK(sm_gguf_get_int(&g, "missing", &iv) == 0);
    const sm_gguf_kv *arr = sm_gguf_find(&g, "a.arr_i32");
    REQUIRE(arr && arr->arr_n == 3);
    CHECK(sm_gguf_arr_int(arr, 0) == 7 && sm_gguf_arr_int(arr, 2) == 9);
    const sm_gguf_kv *as = sm_gguf_find(&g, "a.arr_str");
    REQUIRE(as && as->arr_n == 2);
    const unsigned char *cur = as->arr_data;
    CHECK(sm_gguf_str_eq(sm_gguf_arr_next_str(&cur), "x"));
    CHECK(sm_gguf_str_eq(sm_gguf_arr_next_str(&cur), "yz"));
    CHECK(sm_gguf_find(&g, "a.nested") && sm_gguf_find(&g, "a.nested")->arr_n == 2);
    CHECK(g.alignment == 64 && g.data_offset == data_at);
    const sm_gguf_tensor *t0 = sm_gguf_find_tensor(&g, "t.f32"), *t1 = sm_gguf_find_tensor(&g, "t.f16");
    REQUIRE(t0 && t1);
    CHECK(t0->n_elements == 6 && t0->n_bytes == 24 && t0->data == b.p + data_at);
    CHECK(((const float *)t0->data)[5] == 5.0f);
    CHECK(t1->n_bytes == 8 && t1->data == b.p + data_at + 64);
    sm_gguf_free(&g);

    /* The same file as version 2 parses too; version 1 is refused. */
    uint32_t v = 2;
    memcpy(b.p + 4, &v, 4);
    CHECK(sm_gguf_parse(b.p, b.n, &g, NULL) == SM_OK);
    sm_gguf_free(&g);
    v = 1;
    memcpy(b.p + 4, &v, 4);
    CHECK(sm_gguf_parse(b.p, b.n, &g, &err) == SM_ERR_UNSUPPORTED);
    v = 0x03000000;  /* how a big-endian v3 file reads */
    memcpy(b.p + 4, &v, 4);
    CHECK(sm_gguf_parse(b.p, b.n, &g, &err) == SM_ERR_UNSUPPORTED && strstr(err.message, "big-endian"));
    free(b.p);
}

/* Builds a header with one tensor whose fields the caller chooses. */
static gbuf one_tensor_file(uint32_t n_dims, uint64_t ne0, uint64_t ne1, uint32_t type, uint64_t offset,
                            size_t data_bytes) {
    gbuf b = {0};
    gb_header(&b, 3, 1, 1);
    gb_kv_str(&b, "general.architecture", "llama");
    gb_str(&b, "w");
    gb_u32(&b, n_dims);
    gb_u64(&b, ne0);
    if (n_dims > 1) gb_u64(&b, ne1);
    gb_u32(&b, type);
    gb_u64(&b, offset);
    gb_pad(&b, 32);
    for (size_t i = 0; i < data_bytes; i++) gb_u8(&b, 0);
    return b;
}

static sm_status parse_buf(gbuf *b, sm_error *err) {
    sm_gguf g;
    sm_status st = sm_gguf_parse(b->p, b->n, &g, err);
    if (st == SM_OK) sm_gguf_free(&g);
    free(b->p);
    return st;
}

TEST(gguf_hostile_headers_are_refused) {
    sm_error err = {0};
    gbuf b = one_tensor_file(2, 4, 2, 0, 0, 32);
    CHECK(parse_buf(&b, &err) == SM_OK);
    b = one_tensor_file(2, 4, 2, 0, 0, 31);  /* data one byte short */
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT && strstr(err.message, "past the end"));
    b = one_tensor_file(2, 4, 2, 0, 8, 64);  /* offset not aligned */
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT && strstr(err.message, "aligned"));
    b = one_tensor_file(2, 1ull << 32, 1ull << 32, 0, 0, 32);  /* huge dims */
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT);
    b = one_tensor_file(2, 1ull << 40, 1ull << 40, 0, 0, 32);  /* element count overflows */
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT && strstr(err.message, "overflow"));
    b = one_tensor_file(5, 4, 2, 0, 0, 32);  /* too many dims */
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT);
    b = one_tensor_file(2, 4, 0, 0, 0, 32);  /* zero dim */
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT);
    b = one_tensor_file(2, 4, 2, 99, 0, 32);  /* unknown type */
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT && strstr(err.message, "unknown tensor type"));
    b = one_tensor_file(2, 33, 1, 8, 0, 64);  /* Q8_0 row not a multiple of 32 */
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT && strstr(err.message, "multiple"));
    b = one_tensor_file(2, 4, 2, 0, UINT64_MAX - 31, 32);  /* offset wraps */
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT);

    /* counts far beyond the file */
    b = (gbuf){0};
    gb_header(&b, 3, 0, 1ull << 60);
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT && strstr(err.message, "metadata count"));
    b = (gbuf){0};
    gb_header(&b, 3, UINT64_MAX, 0);
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT && strstr(err.message, "tensor count"));
    /* a string longer than the file */
    b = (gbuf){0};
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, 1ull << 62);
    gb_put(&b, "abcd", 4);
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT);
    /* an array of 2^61 u64 */
    b = (gbuf){0};
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k"); gb_u32(&b, 9); gb_u32(&b, 10); gb_u64(&b, 1ull << 61);
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT);
    /* unknown value type, bad bool, duplicate key, bad alignment */
    b = (gbuf){0};
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k"); gb_u32(&b, 13); gb_u32(&b, 0);
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT && strstr(err.message, "unknown value type"));
    b = (gbuf){0};
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k"); gb_u32(&b, 7); gb_u8(&b, 2);
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT);
    b = (gbuf){0};
    gb_header(&b, 3, 0, 2);
    gb_kv_u32(&b, "k", 1);
    gb_kv_u32(&b, "k", 2);
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT && strstr(err.message, "twice"));
    b = (gbuf){0};
    gb_header(&b, 3, 0, 1);
    gb_kv_u32(&b, "general.alignment", 48);
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT && strstr(err.message, "alignment"));
    /* deeply nested arrays */
    b = (gbuf){0};
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k");
    gb_u32(&b, 9);
    for (int d = 0; d < 10; d++) { gb_u32(&b, 9); gb_u64(&b, 1); }
    gb_u32(&b, 0); gb_u64(&b, 0);
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT);
    /* not GGUF at all */
    b = (gbuf){0};
    gb_put(&b, "GGUX\3\0\0\0", 8);
    CHECK(parse_buf(&b, &err) == SM_ERR_FORMAT && strstr(err.message, "magic"));
}

/* Every prefix of the header and metadata region, and a spread of longer
 * prefixes, must give a clean error. Each prefix sits in a buffer of exactly
 * its size, so a read past it is caught by AddressSanitizer. */
TEST(gguf_truncated_at_every_header_byte) {
    NEED_SHARED(path, "models/stories260K.gguf");
    size_t size;
    char *full = read_file(path, &size);
    REQUIRE(full);
    sm_gguf g;
    REQUIRE(sm_gguf_parse(full, size, &g, NULL) == SM_OK);
    size_t header_end = (size_t)g.data_offset;
    sm_gguf_free(&g);
    int bad = 0, tried = 0;
    for (size_t n = 0; n < size; n += (n < header_end + 256 ? 1 : 4093)) {
        char *p = malloc(n ? n : 1);
        memcpy(p, full, n);
        sm_model *m = NULL;
        sm_error err = {0};
        sm_status st = sm_model_load_buffers(p, n, NULL, 0, &m, &err);
        if (st == SM_OK || m || err.message[0] == '\0') bad++;
        tried++;
        sm_model_free(m);
        free(p);
    }
    CHECKF(bad == 0, "%d of %d truncated files were not refused with a message", bad, tried);
    CHECK(tried > (int)header_end);
    sm_model *m = NULL;
    CHECK(sm_model_load_buffers(full, size, NULL, 0, &m, NULL) == SM_OK);
    sm_model_free(m);
    free(full);
}

/* Random byte changes in the header never crash the loader. */
TEST(gguf_random_header_corruption_never_crashes) {
    NEED_SHARED(path, "models/stories260K.gguf");
    size_t size;
    char *full = read_file(path, &size);
    REQUIRE(full);
    sm_gguf g;
    REQUIRE(sm_gguf_parse(full, size, &g, NULL) == SM_OK);
    size_t header_end = (size_t)g.data_offset;
    sm_gguf_free(&g);
    char *p = malloc(size);
    uint64_t rng = 12345;
    int ok = 0;
    for (int it = 0; it < 1500; it++) {
        memcpy(p, full, size);
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(rng >> 33) % header_end;
            p[at] = (char)(rng >> 13);
        }
        sm_model *m = NULL;
        if (sm_model_load_buffers(p, size, NULL, 0, &m, NULL) == SM_OK) ok++;
        sm_model_free(m);
    }
    CHECK(ok < 1500);  /* most corruptions must be noticed */
    free(p);
    free(full);
}

TEST(gguf_unsupported_tensor_type_is_named) {
    NEED_SHARED(path, "models/stories260K.gguf");
    size_t size;
    char *full = read_file(path, &size);
    REQUIRE(full);
    sm_gguf g;
    REQUIRE(sm_gguf_parse(full, size, &g, NULL) == SM_OK);
    const sm_gguf_tensor *t = sm_gguf_find_tensor(&g, "token_embd.weight");
    REQUIRE(t);
    /* the type field follows the name and the dims */
    size_t type_at = (size_t)((const char *)t->name.ptr - full) + t->name.len + 4 + 8 * t->n_dims;
    sm_gguf_free(&g);
    uint32_t i8 = 24;  /* I8: a valid ggml type SmallMind does not run as weights */
    memcpy(full + type_at, &i8, 4);
    sm_model *m = NULL;
    sm_error err = {0};
    CHECK(sm_model_load_buffers(full, size, NULL, 0, &m, &err) == SM_ERR_UNSUPPORTED);
    CHECKF(strstr(err.message, "I8") && strstr(err.message, "token_embd"), "message: %s", err.message);
    sm_model_free(m);
    free(full);
}

TEST(llama2c_truncated_and_bad_headers_are_refused) {
    NEED_SHARED(path, "models/stories260K.bin");
    NEED_SHARED(tpath, "models/tok512.bin");
    size_t size, tsize;
    char *full = read_file(path, &size), *tok = read_file(tpath, &tsize);
    REQUIRE(full && tok);
    int bad = 0;
    for (size_t n = 0; n < size; n += (n < 64 ? 1 : 997)) {
        char *p = malloc(n ? n : 1);
        memcpy(p, full, n);
        sm_model *m = NULL;
        sm_error err = {0};
        if (sm_model_load_buffers(p, n, tok, tsize, &m, &err) == SM_OK || !err.message[0]) bad++;
        sm_model_free(m);
        free(p);
    }
    CHECK(bad == 0);
    /* every truncation of the tokenizer */
    for (size_t n = 0; n < tsize; n++) {
        char *p = malloc(n ? n : 1);
        memcpy(p, tok, n);
        sm_model *m = NULL;
        if (sm_model_load_buffers(full, size, p, n, &m, NULL) == SM_OK) bad++;
        sm_model_free(m);
        free(p);
    }
    CHECK(bad == 0);
    /* absurd header values */
    int32_t fields[][7] = {{0, 172, 5, 8, 4, 512, 512},   {64, 172, 5, 8, 3, 512, 512},
                           {64, 172, 5, 7, 7, 512, 512},  {64, 172, -5, 8, 4, 512, 512},
                           {64, 172, 5, 8, 4, INT32_MIN, 512}, {1 << 30, 1 << 30, 1 << 20, 8, 4, 512, 512}};
    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
        char *p = malloc(size);
        memcpy(p, full, size);
        memcpy(p, fields[k], 28);
        sm_model *m = NULL;
        sm_error err = {0};
        CHECKF(sm_model_load_buffers(p, size, tok, tsize, &m, &err) == SM_ERR_FORMAT, "header %zu accepted", k);
        sm_model_free(m);
        free(p);
    }
    /* no tokenizer, or the 32000-token one of another model */
    sm_model *m = NULL;
    sm_error err = {0};
    CHECK(sm_model_load_buffers(full, size, NULL, 0, &m, &err) == SM_ERR_INVALID_ARG && strstr(err.message, "-z"));
    NEED_SHARED(big, "models/tokenizer.bin");
    size_t bsize;
    char *btok = read_file(big, &bsize);
    CHECK(sm_model_load_buffers(full, size, btok, bsize, &m, &err) == SM_ERR_FORMAT);
    free(btok);
    free(full);
    free(tok);
}

TEST(model_load_reports_missing_paths_and_directories) {
    sm_model *m = NULL;
    sm_error err = {0};
    CHECK(sm_model_load("/nonexistent/model.gguf", NULL, &m, &err) == SM_ERR_IO && m == NULL);
    CHECK(strstr(err.message, "/nonexistent/model.gguf") != NULL);
    CHECK(sm_model_load("/tmp", NULL, &m, &err) == SM_ERR_IO && strstr(err.message, "directory"));
    CHECK(sm_model_load(NULL, NULL, &m, &err) == SM_ERR_INVALID_ARG);
    CHECK(strcmp(sm_strerror(SM_ERR_FORMAT), "malformed file") == 0);
}
