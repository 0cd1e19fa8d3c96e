// Splits the test strings with V8's regular expressions (an implementation
// independent of src/text/regex.c) under the pre-tokenizer patterns that
// llama.cpp c392e509 cannot run (added to its list later: gpt-4o/llama4,
// bailingmoe, seed-coder; the patterns as llama.cpp's src/llama-vocab.cpp
// writes them), and records each piece as "start:length" in code points:
// the expected values of the unit test pretokenizer_splits_match_v8.
//   node tests/refs/make_pretok_splits.mjs [SHARED]
// The strings: llama.cpp's 46 vocabulary strings (SHARED/vocab/ggml-vocab-
// gpt-2.gguf.inp), then tests/refs/pretok/extra.inp.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const shared = process.argv[2] || join(here, "../../../shared");
const SEP = "\n__ggml_vocab_test__\n";
const text = readFileSync(join(shared, "vocab/ggml-vocab-gpt-2.gguf.inp"), "utf8") +  // ends with SEP
    readFileSync(join(here, "pretok/extra.inp"), "utf8") + SEP;
const cases = text.split(SEP).slice(0, -1);

const C = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const PATTERNS = {
    "gpt-4o": String.raw`[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+` + C + "?" +
        String.raw`|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*` + C + "?" +
        String.raw`|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
    "bailingmoe": String.raw`'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`,
    "seed-coder": C + String.raw`|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+`,
};

for (const [name, pattern] of Object.entries(PATTERNS)) {
    const re = new RegExp(pattern, "gu");
    const lines = cases.map((s) => {
        const cps = Array.from(s);              // code points
        const unitToCp = [];                    // UTF-16 index -> code point index
        let u = 0;
        cps.forEach((c, i) => { unitToCp[u] = i; u += c.length; });
        unitToCp[u] = cps.length;
        const pieces = [];
        let at = 0;
        for (const m of s.matchAll(re)) {
            if (m[0].length === 0) continue;
            const a = unitToCp[m.index], b = unitToCp[m.index + m[0].length];
            if (a > at) pieces.push(`${at}:${a - at}`);   // text between matches is a piece too
            pieces.push(`${a}:${b - a}`);
            at = b;
        }
        if (cps.length > at) pieces.push(`${at}:${cps.length - at}`);
        return pieces.join(" ");
    });
    writeFileSync(join(here, `pretok/${name}.split`), lines.join("\n") + "\n");
    console.log(`${name}: ${lines.length} cases`);
}
