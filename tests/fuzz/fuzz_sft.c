/* fuzz_sft.c - libFuzzer target: chat fine-tuning data (train --data
 * FILE.jsonl), read by src/json/sft.c with Jansson and tokenized with the
 * loss mask by sm_chat_tokenize or, run as Jinja, sm_chat_tokenize_jinja,
 * with the built-in model's tokenizer (models/kjv-3m.gguf; the target does
 * nothing without it). The first byte picks the template: the model's
 * (chatml), llama3, or a Jinja text with an EOS after each reply; the rest
 * is the JSONL text. Errors are fine; a crash, a leak, undefined behaviour,
 * or tokens and masks that disagree in count, are not. */
#include "json/sft.h"

#include <stdint.h>
#include <stdlib.h>

static const char QA[] =
    "{% for m in messages %}{% if m['role'] == 'user' %}{{ '### Question: ' + m['content'] + '\\n' }}"
    "{% elif m['role'] == 'assistant' %}{{ '### Reply: ' + m['content'] + eos_token }}"
    "{% else %}{{ m['content'] + '\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Reply: ' }}{% endif %}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static sm_model *model;
    static int tried;
    if (!tried) {
        tried = 1;
        sm_model_params mp = sm_model_default_params();
        mp.skip_repack = 1;
        if (sm_model_load("models/kjv-3m.gguf", &mp, &model, NULL) != SM_OK) model = NULL;
    }
    if (!model || size < 1 || size > 16384) return 0;
    int pick = data[0] % 3;
    const char *tmpl = pick == 0 ? NULL : pick == 1 ? "llama3" : QA;
    sm_json_sft s;
    if (sm_json_sft_parse((const char *)data + 1, size - 1, "fuzz.jsonl", model, tmpl, pick == 2, &s, NULL) == SM_OK) {
        size_t masked = 0;
        for (size_t i = 0; i < s.ex.offsets[s.ex.n]; i++) masked += s.ex.mask[i];
        if (masked != s.n_masked || s.ex.offsets[0] != 0) abort();
        for (size_t i = 0; i < s.ex.n; i++)
            if (s.ex.offsets[i + 1] <= s.ex.offsets[i]) abort();
        sm_json_sft_free(&s);
    }
    return 0;
}
