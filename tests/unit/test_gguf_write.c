/* test_gguf_write.c - the GGUF writer read back by the reader, and a
 * tokenizer whose pre-tokenizer name is unknown. */
#include "test.h"
#include "io/gguf.h"
#include "io/gguf_write.h"
#include "model/model.h"

#include <stdlib.h>
#include <unistd.h>

TEST(gguf_writer_round_trip) {
    char path[] = "/tmp/sm_test_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    sm_gguf_writer *w = sm_gguf_writer_new();
    sm_gguf_put_u32(w, "a.u32", 7);
    sm_gguf_put_f32(w, "a.f32", -2.5f);
    sm_gguf_put_bool(w, "a.bool", 1);
    sm_gguf_put_str(w, "a.str", "h\xc3\xa9llo");
    const char *strs[] = {"x", "", "yz"};
    sm_gguf_put_str_array(w, "a.strs", strs, 3);
    float fs[3] = {1, 2, 3};
    sm_gguf_put_f32_array(w, "a.fs", fs, 3);
    int32_t is[2] = {-1, 5};
    sm_gguf_put_i32_array(w, "a.is", is, 2);
    float t1[6] = {0, 1, 2, 3, 4, 5};
    uint16_t t2[3] = {0x3C00, 0x4000, 0x4200};
    uint64_t ne1[2] = {3, 2}, ne2[1] = {3};
    sm_gguf_add_tensor(w, "t1", SM_GGML_F32, 2, ne1, t1, sizeof t1);
    sm_gguf_add_tensor(w, "t2", SM_GGML_F16, 1, ne2, t2, sizeof t2);
    sm_error err = {0};
    REQUIRE(sm_gguf_writer_save(w, path, &err) == SM_OK);
    sm_gguf_writer_free(w);
    size_t size;
    char *data = read_file(path, &size);
    REQUIRE(data);
    sm_gguf g;
    REQUIRE(sm_gguf_parse(data, size, &g, &err) == SM_OK);
    int64_t iv;
    double fv;
    int bv;
    sm_gguf_str sv;
    CHECK(g.version == 3 && g.n_kv == 7 && g.n_tensors == 2);
    CHECK(sm_gguf_get_int(&g, "a.u32", &iv) == 1 && iv == 7);
    CHECK(sm_gguf_get_float(&g, "a.f32", &fv) == 1 && fv == -2.5);
    CHECK(sm_gguf_get_bool(&g, "a.bool", &bv) == 1 && bv == 1);
    CHECK(sm_gguf_get_str(&g, "a.str", &sv) == 1 && sm_gguf_str_eq(sv, "h\xc3\xa9llo"));
    const sm_gguf_kv *a = sm_gguf_find(&g, "a.strs");
    REQUIRE(a && a->arr_n == 3);
    const unsigned char *cur = a->arr_data;
    CHECK(sm_gguf_str_eq(sm_gguf_arr_next_str(&cur), "x") && sm_gguf_str_eq(sm_gguf_arr_next_str(&cur), "") &&
          sm_gguf_str_eq(sm_gguf_arr_next_str(&cur), "yz"));
    CHECK(sm_gguf_arr_float(sm_gguf_find(&g, "a.fs"), 2) == 3.0);
    CHECK(sm_gguf_arr_int(sm_gguf_find(&g, "a.is"), 0) == -1);
    const sm_gguf_tensor *x = sm_gguf_find_tensor(&g, "t1"), *y = sm_gguf_find_tensor(&g, "t2");
    REQUIRE(x && y);
    CHECK(x->ne[0] == 3 && x->ne[1] == 2 && memcmp(x->data, t1, sizeof t1) == 0);
    CHECK(y->type == SM_GGML_F16 && memcmp(y->data, t2, sizeof t2) == 0);
    CHECK(((uintptr_t)y->data - (uintptr_t)data) % 32 == 0);
    sm_gguf_free(&g);
    free(data);
    unlink(path);
}

/* A pre-tokenizer name not in the table: a warning naming it, and llama.cpp's
 * "default" split (newer llama.cpp's choice; c392e509 refused the file), which
 * differs from the gpt-2 split on this text (tests/refs/pretok checks that
 * split's ids against llama.cpp's). */
TEST(unknown_pre_tokenizer_warns_and_splits_as_default) {
    NEED_SHARED(src, "vocab/ggml-vocab-gpt-2.gguf");
    char *made_up = vocab_with_pre(src, "made-up-pre"), *deflt = vocab_with_pre(src, "default");
    REQUIRE(made_up && deflt);
    sm_model *a = NULL, *b = NULL, *c = NULL;
    REQUIRE(sm_model_load(made_up, NULL, &a, NULL) == SM_OK);
    REQUIRE(sm_model_load(deflt, NULL, &b, NULL) == SM_OK);
    REQUIRE(sm_model_load(src, NULL, &c, NULL) == SM_OK);
    sm_model_info ia, ib;
    sm_model_get_info(a, &ia);
    sm_model_get_info(b, &ib);
    CHECK(ia.warning && strstr(ia.warning, "made-up-pre") && strstr(ia.warning, "default") && !ib.warning);
    const char *text = "Hello, world!!! 12345 $100 a+b=c <x>";
    sm_token ta[64], tb[64], tc[64];
    size_t na, nb, nc;
    CHECK(sm_tokenize(a, text, strlen(text), 0, ta, 64, &na, NULL) == SM_OK);
    CHECK(sm_tokenize(b, text, strlen(text), 0, tb, 64, &nb, NULL) == SM_OK);
    CHECK(sm_tokenize(c, text, strlen(text), 0, tc, 64, &nc, NULL) == SM_OK);
    CHECK(na == nb && memcmp(ta, tb, na * sizeof *ta) == 0);
    CHECK(na != nc || memcmp(ta, tc, na * sizeof *ta) != 0);
    sm_model_free(a);
    sm_model_free(b);
    sm_model_free(c);
    unlink(made_up);
    unlink(deflt);
    free(made_up);
    free(deflt);
}
