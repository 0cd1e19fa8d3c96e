// logprobs.mjs - the server's log probabilities (tests/serve/serve_test.mjs's
// "logprobs" section), on an F32 copy of the built-in model (`smallmind
// quantize ... F32`) so that the independent reference can read it:
//   reference   a greedy text completion with logprobs 5: each token's log
//               probability and its 5 likeliest alternatives equal PyTorch
//               float64's log-softmax of the model's logits
//               (tests/serve/logprobs_ref.py on tests/torch_ref.py) to 1e-4;
//               the tokens spell the text, text_offset counts their bytes
//   chat        the OpenAI SDK's chat with logprobs and top_logprobs 3: an
//               entry per completion token, spelling the reply, bytes that
//               decode to the token, alternatives sorted, the chosen one
//               first (greedy); streamed, the same entries arrive with the
//               chunks that carry their text
//   stop        a stop string: no entries for tokens whose text was cut
//   bad         top_logprobs without logprobs or above 20, the legacy
//               logprobs above 5 or not an integer: 400 naming the parameter
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SM, MODEL, check, skip, startServer } from './lib.mjs';

const PY = process.env.PYTHON || '/usr/bin/python3';
const close = (a, b, tol = 1e-4) => Math.abs(a - b) <= tol;

export async function logprobsTests() {
  let OpenAI;
  try { ({ default: OpenAI } = await import('openai')); } catch { skip('logprobs', 'the openai package is not installed (npm)'); return; }
  try {
    execFileSync(PY, ['-c', 'import torch, numpy'], { stdio: 'ignore' });
  } catch {
    skip('logprobs', `${PY} cannot import torch and numpy (apt-get install python3-torch python3-numpy)`);
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'smlp-'));
  const f32 = path.join(dir, 'f32.gguf');
  execFileSync(SM, ['quantize', MODEL, f32, 'F32'], { stdio: 'ignore' });
  const srv = await startServer(['-m', f32, '--parallel', '2']);
  try {
    check('logprobs: server ready', await srv.ready());
    const client = new OpenAI({ baseURL: srv.base + '/v1', apiKey: 'unused', maxRetries: 0 });

    // reference: the greedy continuation in PyTorch float64
    const prompt = 'In the beginning God created';
    const N = 12, K = 5;
    const ids = JSON.parse(execFileSync(SM, ['tokenize', '-m', f32, '-p', prompt, '--ids'], { encoding: 'utf8' }));
    const ref = JSON.parse(execFileSync(PY, ['tests/serve/logprobs_ref.py', f32, ids.join(','), String(N), String(K)],
      { encoding: 'utf8' }));
    const c = await client.completions.create({ model: 'x', prompt, max_tokens: N, temperature: 0, logprobs: K });
    const lp = c.choices[0].logprobs;
    check('logprobs: completions carry tokens, token_logprobs, top_logprobs, text_offset', lp && lp.tokens.length === N
      && lp.token_logprobs.length === N && lp.top_logprobs.length === N && lp.text_offset.length === N, JSON.stringify(lp));
    if (lp && lp.tokens.length === N) {
      let worst = 0, tops = true, offsets = true, at = 0;
      for (let i = 0; i < N; i++) {
        worst = Math.max(worst, Math.abs(lp.token_logprobs[i] - ref[i].logprobs[0]));
        const got = Object.values(lp.top_logprobs[i]).sort((a, b) => b - a);
        // K values, or fewer where two of the likeliest tokens have one text (an object has one key each)
        if (got.length < 1 || got.length > K || !got.every((v) => ref[i].logprobs.some((r) => close(v, r)))
          || !close(got[0], ref[i].logprobs[0])) tops = false;
        if (got.length === K) for (let x = 0; x < K; x++) worst = Math.max(worst, Math.abs(got[x] - ref[i].logprobs[x]));
        if (lp.text_offset[i] !== at) offsets = false;
        at += Buffer.byteLength(lp.tokens[i]);
      }
      check('logprobs: each token\'s log probability is PyTorch float64\'s to 1e-4', worst <= 1e-4,
        `worst ${worst}; got ${JSON.stringify(lp.token_logprobs)} ref ${JSON.stringify(ref.map((r) => r.logprobs[0]))}`);
      check('logprobs: the 5 likeliest alternatives are PyTorch\'s', tops, JSON.stringify(lp.top_logprobs.slice(0, 3)));
      check('logprobs: the tokens spell the text; text_offset counts their bytes',
        lp.tokens.join('') === c.choices[0].text && offsets, JSON.stringify(lp.tokens) + ' ' + JSON.stringify(lp.text_offset));
    }

    // chat, whole and streamed
    const messages = [{ role: 'user', content: 'Who made the heaven and the earth?' }];
    const r = await client.chat.completions.create({ model: 'x', messages, max_tokens: 16, temperature: 0, logprobs: true,
      top_logprobs: 3 });
    const content = r.choices[0].logprobs && r.choices[0].logprobs.content;
    check('logprobs: chat has an entry per completion token, spelling the reply', Array.isArray(content)
      && content.length === r.usage.completion_tokens && content.map((e) => e.token).join('') === r.choices[0].message.content,
      JSON.stringify(r.choices[0]));
    if (Array.isArray(content)) {
      let shape = true;
      for (const e of content) {
        const t = e.top_logprobs;
        if (!(e.logprob <= 0 && Buffer.from(e.bytes).toString('utf8') === e.token && t.length === 3
          && t[0].token === e.token && t[0].logprob === e.logprob && t[0].logprob >= t[1].logprob
          && t[1].logprob >= t[2].logprob && t.reduce((s, x) => s + Math.exp(x.logprob), 0) <= 1 + 1e-6)) shape = false;
      }
      check('logprobs: chat entries: bytes decode to the token, 3 alternatives sorted, the greedy choice first', shape,
        JSON.stringify(content.slice(0, 2)));
      const s = await client.chat.completions.create({ model: 'x', messages, max_tokens: 16, temperature: 0, logprobs: true,
        top_logprobs: 3, stream: true });
      const got = [];
      let text = '', aligned = true;
      for await (const ch of s) {
        const choice = ch.choices[0];
        if (!choice) continue;
        const entries = (choice.logprobs && choice.logprobs.content) || [];
        got.push(...entries);
        const piece = choice.delta && choice.delta.content ? choice.delta.content : '';
        text += piece;
        if (piece && entries.map((e) => e.token).join('') !== piece) aligned = false;
      }
      check('logprobs: streamed, the same entries as the whole reply', JSON.stringify(got) === JSON.stringify(content)
        && text === r.choices[0].message.content, JSON.stringify(got.slice(0, 2)));
      check('logprobs: each chunk carries the entries of its own text', aligned);
    }
    const plain = await client.chat.completions.create({ model: 'x', messages, max_tokens: 4, temperature: 0 });
    check('logprobs: null unless asked for', plain.choices[0].logprobs === null, JSON.stringify(plain.choices[0]));

    // a stop string: the tokens cut with it have no entries
    const whole = lp ? lp.tokens : [];
    if (whole.length >= 6) {
      const stop = whole[4].trim() ? whole[4] : whole[5];
      const cut = await client.completions.create({ model: 'x', prompt, max_tokens: N, temperature: 0, logprobs: 1, stop: [stop] });
      const t = cut.choices[0].logprobs.tokens;
      check('logprobs: a stop string ends the entries where it cuts the text',
        cut.choices[0].finish_reason === 'stop' && t.join('') === cut.choices[0].text && t.length < N,
        JSON.stringify(cut.choices[0]) + ' stop ' + JSON.stringify(stop));
    } else {
      check('logprobs: a stop string ends the entries where it cuts the text', false, 'no reference tokens');
    }

    // bad parameters
    const bad = async (url, body, param) => {
      const res = await fetch(srv.base + url, { method: 'POST', body: JSON.stringify(body) });
      const j = await res.json().catch(() => null);
      check(`logprobs: ${JSON.stringify(body).slice(0, 80)} is a 400 naming ${param}`,
        res.status === 400 && j && j.error && j.error.param === param, `${res.status} ${JSON.stringify(j)}`);
    };
    const msgs = [{ role: 'user', content: 'Hi' }];
    await bad('/v1/chat/completions', { messages: msgs, top_logprobs: 2 }, 'top_logprobs');
    await bad('/v1/chat/completions', { messages: msgs, logprobs: true, top_logprobs: 21 }, 'top_logprobs');
    await bad('/v1/chat/completions', { messages: msgs, logprobs: 'yes' }, 'logprobs');
    await bad('/v1/completions', { prompt: 'x', logprobs: 6 }, 'logprobs');
    await bad('/v1/completions', { prompt: 'x', logprobs: true }, 'logprobs');
  } finally {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
