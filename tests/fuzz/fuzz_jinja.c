/* fuzz_jinja.c - libFuzzer target: a chat template run as Jinja (--jinja).
 * The input is the template's text; it runs on a fixed conversation through
 * sm_chat_apply_jinja (the system-role probe, the render, BOS/EOS removal),
 * measuring first and then writing. Parse and run errors are fine; a crash,
 * a leak, undefined behaviour or a measured length that the writing
 * disagrees with is not. Depth, steps and memory are bounded by the engine,
 * so no input hangs. */
#include "smallmind.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 8192) return 0;
    char *tmpl = malloc(size + 1);
    if (!tmpl) return 0;
    memcpy(tmpl, data, size);
    tmpl[size] = '\0';
    static const sm_chat_message msgs[4] = {
        {"system", "Be brief."}, {"user", "Hello \xc3\xa9t\xc3\xa9"}, {"assistant", " Hi "}, {"user", "Why?"}};
    sm_chat_jinja_params p = sm_chat_jinja_default_params();
    p.bos_token = "<s>";
    p.eos_token = "</s>";
    p.now = 0;
    size_t need = 0, len = 0;
    if (sm_chat_apply_jinja(tmpl, msgs, 4, &p, NULL, 0, &need, NULL) == SM_OK) {
        char *out = malloc(need + 1);
        if (out && sm_chat_apply_jinja(tmpl, msgs, 4, &p, out, need + 1, &len, NULL) == SM_OK && len != need) abort();
        free(out);
    }
    free(tmpl);
    return 0;
}
