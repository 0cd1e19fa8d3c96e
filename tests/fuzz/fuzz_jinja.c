/* fuzz_jinja.c - libFuzzer target: a chat template run as Jinja (--jinja).
 * The input is the template's text; it runs on a fixed conversation through
 * sm_chat_apply_jinja (the system-role probe, the render, BOS/EOS removal),
 * measuring first and then writing; then a history with tools, a tool call
 * and its result (minja's probes and polyfills). Parse and run errors are fine; a crash,
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
    /* again with tools, a tool call and its result: minja's probes and polyfills */
    static const char *const k_fn[] = {"name", "arguments"}, *const k_call[] = {"id", "type", "function"};
    static const char *const k_msg[] = {"content", "tool_calls"}, *const k_res[] = {"tool_call_id", "name"};
    static const char *const k_tool[] = {"type", "function"}, *const k_tfn[] = {"name", "description"};
    static const sm_chat_value args_obj = {.type = SM_CHAT_VALUE_DICT, .n = 0};
    static const sm_chat_value fn[] = {{.type = SM_CHAT_VALUE_STRING, .s = "f", .n = 1},
                                       {.type = SM_CHAT_VALUE_STRING, .s = "{}", .n = 2, .json = &args_obj}};
    static const sm_chat_value call[] = {{.type = SM_CHAT_VALUE_STRING, .s = "call_1", .n = 6},
                                         {.type = SM_CHAT_VALUE_STRING, .s = "function", .n = 8},
                                         {.type = SM_CHAT_VALUE_DICT, .items = fn, .keys = k_fn, .n = 2}};
    static const sm_chat_value calls[] = {{.type = SM_CHAT_VALUE_DICT, .items = call, .keys = k_call, .n = 3}};
    static const sm_chat_value m_call[] = {{.type = SM_CHAT_VALUE_NULL}, {.type = SM_CHAT_VALUE_LIST, .items = calls, .n = 1}};
    static const sm_chat_value m_res[] = {{.type = SM_CHAT_VALUE_STRING, .s = "call_1", .n = 6},
                                          {.type = SM_CHAT_VALUE_STRING, .s = "f", .n = 1}};
    static const sm_chat_value x_call = {.type = SM_CHAT_VALUE_DICT, .items = m_call, .keys = k_msg, .n = 2};
    static const sm_chat_value x_res = {.type = SM_CHAT_VALUE_DICT, .items = m_res, .keys = k_res, .n = 2};
    static const sm_chat_value tfn[] = {{.type = SM_CHAT_VALUE_STRING, .s = "f", .n = 1},
                                        {.type = SM_CHAT_VALUE_STRING, .s = "Does f.", .n = 7}};
    static const sm_chat_value tool[] = {{.type = SM_CHAT_VALUE_STRING, .s = "function", .n = 8},
                                         {.type = SM_CHAT_VALUE_DICT, .items = tfn, .keys = k_tfn, .n = 2}};
    static const sm_chat_value tool_list[] = {{.type = SM_CHAT_VALUE_DICT, .items = tool, .keys = k_tool, .n = 2}};
    static const sm_chat_value tools = {.type = SM_CHAT_VALUE_LIST, .items = tool_list, .n = 1};
    static const sm_chat_message hist[4] = {{"system", "Be brief."}, {"user", "Call f"}, {"assistant", ""}, {"tool", "42"}};
    const sm_chat_value *extras[4] = {NULL, NULL, &x_call, &x_res};
    p.tools = &tools;
    p.extras = extras;
    if (sm_chat_apply_jinja(tmpl, hist, 4, &p, NULL, 0, &need, NULL) == SM_OK) {
        char *out = malloc(need + 1);
        if (out && sm_chat_apply_jinja(tmpl, hist, 4, &p, out, need + 1, &len, NULL) == SM_OK && len != need) abort();
        free(out);
    }
    free(tmpl);
    return 0;
}
