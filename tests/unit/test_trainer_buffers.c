/* test_trainer_buffers.c - the trainer's buffers for its matrix products
 * (sm_trainer.mm_floats: transposed operands, packed batches, results) on
 * levels that read a product's batch in place. They used to be sized for
 * the largest operand four times over, the tokens of a batch times the
 * vocabulary (537 MiB for the LLaMA 15M shape with a vocabulary of 32000,
 * untouched but reserved and reported by the profiler); on these levels a
 * batch read by columns is packed only up to SM_TRAIN_PACKED_BYTES and
 * nothing is transposed or copied, so they must stay a fraction of the
 * logits however large the vocabulary grows. */
#include "test.h"
#include "train/trainer.h"

#include <string.h>

static int trainer_mm_floats(int n_vocab, int B, int T, size_t *mm_floats, int *strided) {
    sm_train_config c;
    memset(&c, 0, sizeof c);
    sm_hparams *hp = &c.hp;
    sm_error err;
    hp->arch = sm_arch_by_name("llama", 5);
    hp->dim = 64;
    hp->n_layers = 1;
    hp->n_heads = 4;
    hp->n_kv_heads = 4;
    hp->ffn_dim = 128;
    hp->n_vocab = n_vocab;
    hp->n_ctx_train = T;
    hp->norm_eps = 1e-5f;
    hp->rope_base = 10000.0f;
    if (sm_arch_finish_hparams(hp, SM_ERR_INVALID_ARG, &err)) return 0;
    c.tied = 1;
    sm_trainer *t;
    if (sm_trainer_new(&c, B, T, 1, 0, &t, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 0;
    }
    *mm_floats = t->mm_floats;
    *strided = t->kt->gemm_strided != NULL;
    sm_trainer_free(t);
    return 1;
}

TEST(trainer_product_buffers_do_not_grow_with_batch_times_vocabulary) {
    enum { B = 8, T = 64, N = B * T };
    size_t small, large;
    int strided;
    REQUIRE(trainer_mm_floats(1000, B, T, &small, &strided));
    REQUIRE(trainer_mm_floats(64000, B, T, &large, &strided));
    double logits = (double)N * 64000;
    printf("     products' buffers: vocabulary 1000 %.1f MiB, 64000 %.1f MiB (logits %.1f MiB)%s\n",
           small * 4.0 / 1048576, large * 4.0 / 1048576, logits * 4 / 1048576,
           strided ? "" : " (level without the in-place product: sized for the largest operand)");
    if (!strided) return;
    CHECKF(large < logits / 2, "%zu floats of buffers for %.0f floats of logits", large, logits);
    CHECKF(large * sizeof(float) < SM_TRAIN_PACKED_BYTES + ((size_t)16 << 20), "%zu floats", large);
}
