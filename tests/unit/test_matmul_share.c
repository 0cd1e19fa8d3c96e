/* test_matmul_share.c - products that share one input (sm_matmul_share_input:
 * forward.c's Q, K and V, gate and up) quantize or pack it once: a second
 * product gives exactly what it gives alone, and it does reuse the first's
 * work (the input overwritten between the two leaves its result alone,
 * where without the sharing it changes it). */
#include "test.h"
#include "model/model.h"
#include "model/ops.h"
#include "model/session.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { ROWS = 6, MAXOUT = 64 };

/* Q (and a K-shaped matrix k) of layer 0 against a[ROWS][dim]; n rows, of
 * which the first nv through the matrix x vector kernels. */
static void check_share(sm_session *s, const sm_matrix *q, const sm_matrix *k, int n, int nv, const char *what) {
    int dim = k->cols;
    float *a = calloc((size_t)ROWS * dim, sizeof(float)), *keep = calloc((size_t)ROWS * dim, sizeof(float));
    float alone[ROWS * MAXOUT], shared[ROWS * MAXOUT], scratch[ROWS * MAXOUT], changed[ROWS * MAXOUT];
    REQUIRE(a && keep && k->rows <= MAXOUT && q->rows <= MAXOUT);
    for (int i = 0; i < ROWS * dim; i++) a[i] = (float)((i * 7919) % 201 - 100) / 37.0f;
    memcpy(keep, a, sizeof(float) * ROWS * dim);
    sm_matmul(s, alone, k->rows, k, a, n, nv, NULL, 0);
    /* shared: the first product quantizes or packs a; a then changes, which
     * the promise of sm_matmul_share_input rules out, to show the second
     * product did not look at it again */
    if (s->xsum) memset(s->xsum, 0x55, sizeof(int32_t) * s->xsum_stride);   /* stale sums would show */
    sm_matmul_share_input(s, a);
    sm_matmul(s, scratch, q->rows, q, a, n, nv, NULL, 0);
    for (int i = 0; i < ROWS * dim; i++) a[i] = 3.0f - 2.0f * a[i];
    sm_matmul(s, shared, k->rows, k, a, n, nv, NULL, 0);
    sm_matmul_share_input(s, NULL);
    /* not shared: the changed input gives another result */
    sm_matmul(s, changed, k->rows, k, a, n, nv, NULL, 0);
    CHECKF(!memcmp(alone, shared, sizeof(float) * n * k->rows), "%s: the second product of a shared input differs "
           "from the product alone (%g vs %g)", what, (double)shared[0], (double)alone[0]);
    CHECKF(memcmp(alone, changed, sizeof(float) * n * k->rows) != 0, "%s: the changed input gave the same result", what);
    /* and again after the sharing ended: a fresh quantization of the same input */
    memcpy(a, keep, sizeof(float) * ROWS * dim);
    sm_matmul(s, shared, k->rows, k, a, n, nv, NULL, 0);
    CHECKF(!memcmp(alone, shared, sizeof(float) * n * k->rows), "%s: after the sharing the product differs", what);
    free(a);
    free(keep);
}

static void check_model(const char *path, const char *type) {
    sm_model *m = NULL;
    sm_session *s = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK);
    const sm_layer *L = &m->layers[0];
    char what[96];
    const struct { int n, nv; const char *name; } cases[] = {{1, 1, "one token"}, {4, 4, "4 one-token rows"},
                                                             {ROWS, 0, "a batch"}};
    int f32 = !strcmp(type, "F32");   /* one token reads the floats: nothing to share */
    /* a batch is prepared once only where the level packs it or quantizes it for integer products
     * (the scalar level, under SM_KERNELS=scalar, reads it where it is: nothing to share) */
    int batch = s->kt->gemm || s->kt->pack_a || (L->wk.x16 && s->tk[L->wk.type].batch_x16);
    size_t n_cases = sizeof cases / sizeof cases[0] - (batch ? 0 : 1);
    for (size_t c = f32 ? 2 : 0; c < n_cases; c++) {
        snprintf(what, sizeof what, "%s, %s", type, cases[c].name);
        check_share(s, &L->wq, &L->wk, cases[c].n, cases[c].nv, what);
    }
    /* one token: the first product needing no block sums (no interleaved
     * copy), the second needing them: they are made from the held
     * quantization */
    sm_matrix plain = L->wq;
    plain.x16 = NULL;
    if (!f32) {
        snprintf(what, sizeof what, "%s, one token, sums added", type);
        check_share(s, &plain, &L->wk, 1, 1, what);
        snprintf(what, sizeof what, "%s, 4 one-token rows, sums added", type);
        check_share(s, &plain, &L->wk, 4, 4, what);
    }
    sm_session_free(s);
    sm_model_free(m);
}

TEST(products_of_a_shared_input_reuse_its_quantization) {
    NEED_SHARED(p, "models/stories260K.gguf");
    check_model(p, "F32");
    const char *types[] = {"Q8_0", "Q4_0"};
    for (int t = 0; t < 2; t++) {
        char path[] = "/tmp/sm_share_XXXXXX";
        int fd = mkstemp(path);
        REQUIRE(fd >= 0);
        close(fd);
        REQUIRE(sm_model_quantize_file(p, path, types[t], NULL, NULL, NULL) == SM_OK);
        check_model(path, types[t]);
        unlink(path);
    }
}
