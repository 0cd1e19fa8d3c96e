// util.mjs - llama-server's utility endpoints (tests/serve/serve_test.mjs's
// "util" section): POST /tokenize (plain, add_special, with_pieces, pieces
// that are not whole UTF-8, mixed strings and ids, special-token text),
// /detokenize and /apply-template on models/kjv-chat-3m.gguf, each answer
// equal to llama-server c392e509's to the same request
// (tests/refs/server_util/, made by tests/refs/make_server_util_refs.mjs);
// then bad bodies: a 400 naming the member, the server serving on.
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { check, startServer } from './lib.mjs';

const DIR = 'tests/refs/server_util/';
const lines = (f) => readFileSync(DIR + f, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));

async function post(base, path, body) {
  const res = await fetch(base + path, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

export async function utilTests() {
  const srv = await startServer(['-m', 'models/kjv-chat-3m.gguf']);
  try {
    check('util: the server loads the chat model', await srv.ready());
    const reqs = lines('requests.jsonl'), want = lines('responses.jsonl');
    check('util: a recorded answer for every request', reqs.length === want.length && reqs.length > 0);
    for (let i = 0; i < reqs.length; i++) {
      const got = await post(srv.base, reqs[i].path, reqs[i].body);
      check(`util: ${reqs[i].path} ${JSON.stringify(reqs[i].body).slice(0, 60)} as llama-server answers`,
        got.status === want[i].status && isDeepStrictEqual(got.body, want[i].body),
        `got ${got.status} ${JSON.stringify(got.body).slice(0, 300)}\n    want ${want[i].status} ${JSON.stringify(want[i].body).slice(0, 300)}`);
    }
    const bad = [
      ['/tokenize', '{"content": 5}', 'content'],
      ['/tokenize', '{"content": ["a", -1]}', 'content'],
      ['/tokenize', '{"content": "a", "with_pieces": "yes"}', 'with_pieces'],
      ['/detokenize', '{"tokens": [1, 99999999]}', 'tokens'],
      ['/detokenize', '{"tokens": "1 2"}', 'tokens'],
      ['/apply-template', '{"messages": []}', 'messages'],
      ['/tokenize', '{"content": "a"', null],
      ['/detokenize', '[1, 2]', null],
      // found by fuzz_server_util: the parse error quotes the body up to a cut character
      ['/tokenize', '{"cowithn|\\\u00e9","wices":true}', null],
      ['/v1/chat/completions', '{"messages":"\\\u00e9"}', null],
    ];
    for (const [path, body, param] of bad) {
      const got = await post(srv.base, path, body);
      check(`util: ${path} ${body} is a 400${param ? ' naming ' + param : ''}`,
        got.status === 400 && got.body.error && got.body.error.param === param && got.body.error.message.length > 0
          && !/out of memory/.test(got.body.error.message),
        JSON.stringify(got));
    }
    // a piece cut inside a character detokenizes to U+FFFD, never invalid JSON
    const cut = await post(srv.base, '/detokenize', { tokens: [99, 195] });
    check('util: /detokenize of half a character gives U+FFFD', cut.status === 200 && cut.body.content === 'c\uFFFD',
      JSON.stringify(cut));
    check('util: the server serves on', (await fetch(srv.base + '/health')).status === 200);
  } finally { await srv.stop(); }
}
