/* fuzz_checkpoint.c - libFuzzer target: the trainer's checkpoint reader
 * (sm_ckpt_read, what `smallmind train --resume` runs) on arbitrary bytes,
 * seeded by tests/fuzz/run.sh with a real checkpoint of a tiny model. When a
 * checkpoint is accepted, what the reader promises is checked: the step is
 * below the run's steps, the data position inside its stream, every weight
 * and moment finite and no second moment negative. Build with `make fuzz`. */
#include "model/model.h"
#include "train/checkpoint.h"

#include <math.h>

/* the run the seed checkpoint continues (see run.sh) */
enum { BATCH = 2, SEQ = 8, STEPS = 1000, N_TRAIN = 4096 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sm_model *m = NULL;
    if (sm_model_load_buffers(data, size, NULL, 0, &m, NULL) != SM_OK) return 0;
    sm_train_config cfg;
    if (sm_train_config_of(m, &cfg, NULL) == SM_OK) {
        sm_trainer *t = NULL;
        /* shapes the mutations grow beyond a small model are left out: the
         * trainer would spend the run allocating, not reading */
        if (cfg.hp.dim <= 256 && cfg.hp.ffn_dim <= 1024 && cfg.hp.n_vocab <= 8192 && cfg.hp.n_layers <= 4 &&
            sm_trainer_new(&cfg, BATCH, SEQ, 1, 0, &t, NULL) == SM_OK) {
            sm_ckpt_run run = {BATCH, SEQ, STEPS, N_TRAIN, 0, 0};
            sm_ckpt_state st;
            if (sm_ckpt_read(t, m, &run, &st, NULL) == SM_OK) {
                if (st.step >= STEPS || st.data_pos > N_TRAIN) __builtin_trap();
                for (size_t i = 0; i < t->n_floats; i++)
                    if (!isfinite(t->w[i]) || !isfinite(t->m[i]) || !isfinite(t->v[i]) || t->v[i] < 0) __builtin_trap();
            }
            sm_trainer_free(t);
        }
    }
    sm_model_free(m);
    return 0;
}
