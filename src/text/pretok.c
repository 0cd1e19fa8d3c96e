/* pretok.c - see pretok.h. The patterns are the published ones (each
 * model's tokenizer.json, as llama.cpp's src/llama-vocab.cpp lists them per
 * tokenizer.ggml.pre). Characters beyond ASCII are written as \x{...}
 * escapes so that no editor's Unicode normalization can change them: the
 * deepseek-llm letter class holds characters such as U+1F7D and U+212A
 * (KELVIN SIGN) whose normalized forms are other code points, which turned
 * the range U+1F5F-U+1F7D into U+1F5F-U+03CE, out of order. */
#include "pretok.h"
#include "regex.h"
#include "core/alloc.h"
#include "core/error.h"

#include <string.h>

#define GPT2_RE "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
/* English contractions in either case (the tokenizer.json patterns' (?i:...)) */
#define ANY_CASE_CONTRACTION "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define LLAMA3_RE ANY_CASE_CONTRACTION "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define QWEN2_RE ANY_CASE_CONTRACTION "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* CJK unified ideographs U+4E00-U+9FA5, U+0800-U+4E00, Hangul U+AC00-U+D7FF */
#define CJK_RE "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
/* deepseek-llm's letters: ASCII, Latin, Greek, Cyrillic, Armenian, Georgian,
 * Cherokee, ... (the cased letters of its tokenizer.json, range by range) */
#define DEEPSEEK_LLM_LETTERS_RE                                                                                     \
    "\\s?[A-Za-z\\x{00B5}\\x{00C0}-\\x{00D6}\\x{00D8}-\\x{00F6}\\x{00F8}-\\x{01BA}\\x{01BC}-\\x{01BF}"                \
    "\\x{01C4}-\\x{0293}\\x{0295}-\\x{02AF}\\x{0370}-\\x{0373}\\x{0376}\\x{0377}\\x{037B}-\\x{037D}\\x{037F}"          \
    "\\x{0386}\\x{0388}-\\x{038A}\\x{038C}\\x{038E}-\\x{03A1}\\x{03A3}-\\x{03F5}\\x{03F7}-\\x{0481}"                   \
    "\\x{048A}-\\x{052F}\\x{0531}-\\x{0556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}"                  \
    "\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}"                  \
    "\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}"                  \
    "\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}"                    \
    "\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}"                  \
    "\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}"          \
    "\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}"                    \
    "\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}"          \
    "\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}"                    \
    "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}"                  \
    "\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}"         \
    "\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+"
/* ASCII punctuation, fullwidth forms, quotation marks U+2018-U+201F, CJK
 * space and marks U+3000-U+3002 */
#define DEEPSEEK_LLM_PUNCT_RE "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+"
/* bloom: anything but spaces and . , ! ? and U+2026 U+3002 U+FF0C U+3001
 * U+0964 U+06D4 U+060C (the parentheses and bar are literal in the class) */
#define BLOOM_RE " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{0964}\\x{06D4}\\x{060C})]+"
/* Cased letter runs as llama.cpp writes the tokenizer.json classes
 * [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]* [\p{Ll}\p{Lm}\p{Lo}\p{M}]+ (and + *): "a letter
 * that is not a-z" then "a letter that is not A-Z", with an optional
 * prefix; llama.cpp runs this form, so its token ids are the ones users
 * compare. tekken (Mistral NeMo) has single digits; gpt-4o / llama4 /
 * minimax-m2 (tiktoken's o200k_base) a contraction after each run and
 * numbers of 1-3 digits. */
#define NOT_LOWER "((?=[\\p{L}])([^a-z]))"
#define NOT_UPPER "((?=[\\p{L}])([^A-Z]))"
#define CASED_PREFIX "[^\\r\\n\\p{L}\\p{N}]?"
#define CASED_RE(tail)                                                                                              \
    CASED_PREFIX NOT_LOWER "*" NOT_UPPER "+" tail "|" CASED_PREFIX NOT_LOWER "+" NOT_UPPER "*" tail
#define TEKKEN_RE CASED_RE("") "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define O200K_RE                                                                                                    \
    CASED_RE(ANY_CASE_CONTRACTION "?") "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* bailingmoe (Ling): the tokenizer.json pattern with its possessive
 * quantifiers made greedy, as llama.cpp runs it */
#define BAILING_RE                                                                                                  \
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*" \
    "|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"
/* seed-coder: single digits; punctuation runs stop at a line break */
#define SEED_CODER_RE                                                                                               \
    ANY_CASE_CONTRACTION "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+" \
    "|\\s+(?!\\S)|\\s+"
#define MAX_RE 6

typedef struct pre_def {
    const char *names;       /* '|'-separated tokenizer.ggml.pre values */
    int ignore_merges;       /* a piece that is a whole token is not merged */
    int add_bos;             /* BOS added when the file has no tokenizer.ggml.add_bos_token */
    const char *re[MAX_RE];
} pre_def;

static const pre_def pre_defs[] = {
    {"gpt-2|phi-2|mpt|olmo|jais|roberta-bpe|jina-es|jina-de|gigachat|jina-v1-en|jina-v2-es|jina-v2-de|jina-v2-code|"
     "trillion|granite-docling|exaone4",
     0, 0, {GPT2_RE}},
    {"llama3|llama-v3|llama-bpe|falcon3", 1, 1, {LLAMA3_RE}},
    {"dbrx|smaug-bpe|chatglm-bpe|glm4", 0, 0, {LLAMA3_RE}},
    {"qwen2|deepseek-r1-qwen|stablelm2|megrez|hunyuan|grok-2", 0, 0, {QWEN2_RE}},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva", 0, 0, {"\\p{N}", GPT2_RE}},
    {"falcon", 0, 0, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2_RE, "[0-9][0-9][0-9]"}},
    {"deepseek-coder", 0, 0, {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", CJK_RE, "\\p{N}"}},
    {"deepseek-llm", 0, 0, {"[\r\n]", DEEPSEEK_LLM_LETTERS_RE, DEEPSEEK_LLM_PUNCT_RE, "\\s+$", CJK_RE, "\\p{N}+"}},
    {"deepseek-v3|hunyuan-dense", 0, 0,
     {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",  /* CJK, hiragana, katakana */
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}},
    {"poro-chat|bloom|gpt3-finnish", 0, 0, {BLOOM_RE}},
    {"viking", 0, 0, {BLOOM_RE, "\\p{N}"}},
    {"tekken", 1, 1, {TEKKEN_RE}},
    {"gpt-4o|llama4|minimax-m2", 0, 0, {O200K_RE}},
    {"bailingmoe|bailingmoe2|llada-moe", 0, 0, {BAILING_RE}},
    {"seed-coder", 0, 0, {SEED_CODER_RE}},
    /* chameleon: its sentinel and image tokens, tab/newline/space runs, digits,
     * single punctuation marks, then the gpt-2 pattern (as llama.cpp lists them) */
    {"chameleon", 0, 1,
     {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}",
      "[\\p{P}!-/:-@\\[-`{-~]", GPT2_RE}},
    /* llama.cpp's split for a file that names no pre-tokenizer, or one it
     * does not know (newer llama.cpp; c392e509 refused the latter) */
    {"default", 0, 0, {"[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2_RE, "\\p{N}+", "[0-9][0-9][0-9]"}},
};

#define N_DEFS (sizeof pre_defs / sizeof pre_defs[0])

struct sm_pretok {
    sm_regex *re[MAX_RE];
    int n_re;
    int ignore_merges, add_bos;
};

const char *sm_pretok_gpt2_pattern(void) { return GPT2_RE; }

const char *sm_pretok_names(size_t i) { return i < N_DEFS ? pre_defs[i].names : NULL; }

int sm_pretok_ignore_merges(const sm_pretok *p) { return p->ignore_merges; }

int sm_pretok_add_bos(const sm_pretok *p) { return p->add_bos; }

static int name_in(const char *names, const char *name, size_t len) {
    for (const char *p = names; *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && memcmp(p, name, len) == 0) return 1;
        if (!bar) break;
        p = bar + 1;
    }
    return 0;
}

void sm_pretok_free(sm_pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n_re; i++) sm_regex_free(p->re[i]);
    sm_free(p);
}

sm_status sm_pretok_new(const char *name, size_t len, sm_pretok **out, int *fallback, sm_error *err) {
    *out = NULL;
    *fallback = 0;
    const pre_def *def = &pre_defs[N_DEFS - 1];  /* "default" */
    int found = 0;
    for (size_t i = 0; name && i < N_DEFS; i++)
        if (name_in(pre_defs[i].names, name, len)) { def = &pre_defs[i]; found = 1; break; }
    if (!found) *fallback = name ? 1 : 2;
    sm_pretok *p = sm_calloc(1, sizeof *p);
    if (!p) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    p->ignore_merges = def->ignore_merges;
    p->add_bos = def->add_bos;
    for (int i = 0; i < MAX_RE && def->re[i]; i++) {
        char msg[128];
        if (!(p->re[i] = sm_regex_compile(def->re[i], msg, sizeof msg))) {
            sm_pretok_free(p);
            const char *shown = found ? name : "default";
            int shown_len = found ? (int)(len > 64 ? 64 : len) : 7;
            return sm_fail(err, strstr(msg, "out of memory") ? SM_ERR_NOMEM : SM_ERR_UNSUPPORTED,
                           "pre-tokenizer '%.*s', pattern %d: %s", shown_len, shown, i + 1, msg);
        }
        p->n_re = i + 1;
    }
    *out = p;
    return SM_OK;
}

size_t sm_pretok_split(const sm_pretok *p, const uint32_t *cps, size_t n_cps, uint32_t *starts, uint32_t *lens,
                       uint32_t *ts, uint32_t *tl) {
    if (n_cps == 0) return 0;
    starts[0] = 0;
    lens[0] = (uint32_t)n_cps;
    size_t n = 1;
    for (int r = 0; r < p->n_re; r++) {
        size_t m = 0;
        for (size_t f = 0; f < n; f++) {
            const uint32_t *s = cps + starts[f];
            size_t len = lens[f], pos = 0, ms, me;
            while (pos < len && sm_regex_search(p->re[r], s, len, pos, &ms, &me)) {
                if (ms > pos) { ts[m] = starts[f] + (uint32_t)pos; tl[m++] = (uint32_t)(ms - pos); }
                ts[m] = starts[f] + (uint32_t)ms;
                tl[m++] = (uint32_t)(me - ms);
                pos = me;
            }
            if (pos < len) { ts[m] = starts[f] + (uint32_t)pos; tl[m++] = (uint32_t)(len - pos); }
        }
        memcpy(starts, ts, m * sizeof *starts);
        memcpy(lens, tl, m * sizeof *lens);
        n = m;
    }
    return n;
}
