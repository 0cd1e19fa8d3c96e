// serve_test.mjs - `smallmind serve` end to end, on loopback only (run by
// tests/serve_test.sh, which installs the packages first):
//   sdk      the official OpenAI Node SDK: models, chat and completions,
//            streaming and not, usage, embeddings (base64 and float); the
//            greedy text checked against `smallmind run`, the token counts
//            against `smallmind tokenize`
//   load     8 concurrent streaming clients x 25 requests, greedy: no
//            errors, well-formed streams, each answer what the request gets
//            alone
//   kv       -ctk f16 -ctv f16, then q8_0 (with --no-mmap): 4 clients at once on those caches, each answer
//            what the request gets alone
//   hostile  bad bodies, huge bodies, bad parameters, idle and slow
//            connections, vanishing clients, API key, queue limit, loading,
//            SIGTERM; /health within 100 ms throughout
//   page     the chat page in headless Chromium (playwright-core)
//   format   response_format json_schema / json_object (format.mjs)
//   trace    --trace-requests: GET /debug/trace, the last N requests as a
//            Chrome trace (queue, prompt, generation per slot), checked
//            against what the client saw
//   logprobs log probabilities against PyTorch float64 (logprobs.mjs)
//   util     /tokenize, /detokenize, /apply-template against llama-server (util.mjs)
//   jinja    --jinja: prompts against llama-server's (jinja.mjs)
//   tools    tool calling with --jinja: prompts against llama-server's, calls
//            checked against the tools' schemas, refusals (tools.mjs)
//   responses OpenAI's Responses API through the SDK, held against chat's
//            answers to the same conversations (responses.mjs)
// Arguments select sections (default: all); -NAME leaves one out.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  SM, MODEL, check, skip, finish, sleep, startServer, rawRequest, post, healthMs, parseSSE, assemble, metric,
} from './lib.mjs';
import { formatTests } from './format.mjs';
import { logprobsTests } from './logprobs.mjs';
import { utilTests } from './util.mjs';
import { nativeTests } from './native.mjs';
import { jinjaTests } from './jinja.mjs';
import { toolsTests } from './tools.mjs';
import { responsesTests } from './responses.mjs';

const sections = process.argv.slice(2).filter((s) => !s.startsWith('-'));
const without = process.argv.slice(2).filter((s) => s.startsWith('-')).map((s) => s.slice(1));
const want = (s) => (sections.length === 0 || sections.includes(s)) && !without.includes(s);

const chatBody = (content, extra = {}) => JSON.stringify({
  model: 'any', messages: [{ role: 'user', content }], max_tokens: 24, temperature: 0, ...extra,
});

// /health on fresh connections while something else goes on: every probe
// must come back within 100 ms.
async function healthDuring(name, port, probes = 5) {
  const times = [];
  for (let i = 0; i < probes; i++) {
    times.push(await healthMs(port));
    await sleep(30);
  }
  const worst = Math.max(...times);
  check(`${name}: /health within 100 ms meanwhile`, worst < 100, `times ${times.map((t) => t.toFixed(1)).join(' ')} ms`);
}

async function sdkTests() {
  let OpenAI;
  try { ({ default: OpenAI } = await import('openai')); } catch { skip('sdk', 'the openai package is not installed (npm)'); return; }
  const srv = await startServer(['--parallel', '4']);
  try {
    check('sdk: server ready', await srv.ready());
    const client = new OpenAI({ baseURL: srv.base + '/v1', apiKey: 'unused', maxRetries: 0 });

    const models = await client.models.list();
    check('sdk: models.list names the model', models.data.length === 1 && models.data[0].id === path.basename(MODEL)
      && models.data[0].object === 'model', JSON.stringify(models.data));
    const one = await client.models.retrieve(path.basename(MODEL));
    check('sdk: models.retrieve gives the model', one.id === path.basename(MODEL) && one.object === 'model',
      JSON.stringify(one));
    let missing = null;
    try { await client.models.retrieve('gpt-4o'); } catch (e) { missing = e; }
    check('sdk: models.retrieve of another model is OpenAI\'s 404', missing && missing.status === 404
      && missing.code === 'model_not_found' && /gpt-4o/.test(missing.message), String(missing));

    // completions: the greedy text must be what `smallmind run` prints, and
    // the prompt's token count what `smallmind tokenize` counts
    const prompt = 'In the beginning God created';
    const expect = execFileSync(SM, ['run', '-m', MODEL, '-p', prompt, '-n', '12', '--temp', '0', '--no-display-prompt'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).replace(/\n$/, '');
    const ids = JSON.parse(execFileSync(SM, ['tokenize', '-m', MODEL, '-p', prompt, '--ids'], { encoding: 'utf8' }));
    const c = await client.completions.create({ model: 'x', prompt, max_tokens: 12, temperature: 0 });
    check('sdk: completions text is smallmind run\'s greedy text', c.choices[0].text === expect,
      `server ${JSON.stringify(c.choices[0].text)} run ${JSON.stringify(expect)}`);
    check('sdk: completions usage', c.usage.prompt_tokens === ids.length && c.usage.completion_tokens === 12
      && c.usage.total_tokens === ids.length + 12 && c.choices[0].finish_reason === 'length' && c.object === 'text_completion',
      JSON.stringify(c.usage) + ' tokenize ' + ids.length);

    const cs = await client.completions.create({ model: 'x', prompt, max_tokens: 12, temperature: 0, stream: true,
      stream_options: { include_usage: true } });
    let ctext = '', cusage = null, cfinish = null;
    for await (const ch of cs) {
      if (ch.usage) cusage = ch.usage;
      if (ch.choices[0]) { ctext += ch.choices[0].text; cfinish = ch.choices[0].finish_reason || cfinish; }
    }
    check('sdk: streamed completions equal the whole one', ctext === c.choices[0].text && cfinish === 'length',
      JSON.stringify(ctext));
    check('sdk: streamed completions usage chunk', cusage && cusage.prompt_tokens === ids.length
      && cusage.completion_tokens === 12, JSON.stringify(cusage));

    // chat
    const messages = [{ role: 'system', content: 'Answer in the words of the King James Bible.' },
      { role: 'user', content: 'Who made the heaven and the earth?' }];
    const r = await client.chat.completions.create({ model: 'x', messages, max_tokens: 20, temperature: 0 });
    const m = r.choices[0].message;
    check('sdk: chat completion', r.object === 'chat.completion' && m.role === 'assistant'
      && typeof m.content === 'string' && m.content.length > 0 && ['stop', 'length'].includes(r.choices[0].finish_reason),
      JSON.stringify(r));
    check('sdk: chat usage adds up', r.usage.prompt_tokens > 10 && r.usage.completion_tokens > 0
      && r.usage.completion_tokens <= 20 && r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens,
      JSON.stringify(r.usage));
    const s = await client.chat.completions.create({ model: 'x', messages, max_tokens: 20, temperature: 0, stream: true,
      stream_options: { include_usage: true } });
    let text = '', usage = null, role = null, fin = null, n = 0;
    for await (const ch of s) {
      n++;
      if (ch.usage) usage = ch.usage;
      const d = ch.choices[0] && ch.choices[0].delta;
      if (d && d.role) role = d.role;
      if (d && d.content) text += d.content;
      if (ch.choices[0] && ch.choices[0].finish_reason) fin = ch.choices[0].finish_reason;
    }
    check('sdk: streamed chat equals the whole answer', text === m.content && role === 'assistant'
      && fin === r.choices[0].finish_reason && n > 3, `${JSON.stringify(text)} vs ${JSON.stringify(m.content)}`);
    check('sdk: streamed chat usage (the prompt reused from the slot)', usage
      && usage.prompt_tokens === r.usage.prompt_tokens && usage.completion_tokens === r.usage.completion_tokens
      && usage.prompt_tokens_details.cached_tokens > 0, JSON.stringify(usage));

    // a follow-up that repeats the conversation: only the new part is evaluated
    const follow = [...messages, { role: 'assistant', content: m.content }, { role: 'user', content: 'And then?' }];
    const f = await client.chat.completions.create({ model: 'x', messages: follow, max_tokens: 8, temperature: 0 });
    check('sdk: a follow-up reuses the conversation evaluated so far',
      f.usage.prompt_tokens_details.cached_tokens >= r.usage.prompt_tokens, JSON.stringify(f.usage));

    // sampling parameters are accepted; a seed repeats a draw
    const seeded = async () => (await client.chat.completions.create({ model: 'x', messages, max_tokens: 16,
      temperature: 1.0, top_p: 0.9, seed: 1234, presence_penalty: 0.5, frequency_penalty: 0.5, stop: ['\n\n\n'] }))
      .choices[0].message.content;
    const a1 = await seeded(), a2 = await seeded();
    check('sdk: the same seed gives the same sample', a1 === a2, `${JSON.stringify(a1)} vs ${JSON.stringify(a2)}`);

    // stop strings: not sent, finish_reason stop
    const full = (await client.completions.create({ model: 'x', prompt, max_tokens: 12, temperature: 0 })).choices[0].text;
    const word = full.split(' ').filter((x) => x.length > 0)[2];
    const stop = word ? ' ' + word : null, cut = stop ? full.indexOf(stop) : -1;
    if (cut > 0) {
      const st = await client.completions.create({ model: 'x', prompt, max_tokens: 12, temperature: 0, stop: [stop] });
      check('sdk: a stop string ends the text before it', st.choices[0].text === full.slice(0, cut)
        && st.choices[0].finish_reason === 'stop', JSON.stringify(st.choices[0]) + ' stop ' + JSON.stringify(stop));
    } else {
      skip('sdk: stop string', `no third word in ${JSON.stringify(full)}`);
    }

    // embeddings: the SDK asks for base64 by default; float too
    const e1 = await client.embeddings.create({ model: 'x', input: 'In the beginning' });
    const e2 = await client.embeddings.create({ model: 'x', input: ['In the beginning', 'And God said'],
      encoding_format: 'float' });
    const v = e1.data[0].embedding, w = e2.data[0].embedding, u = e2.data[1].embedding;
    const norm = Math.sqrt(v.reduce((acc, x) => acc + x * x, 0));
    check('sdk: embeddings are unit vectors of the model width', v.length === 192 && Math.abs(norm - 1) < 1e-5,
      `length ${v.length} norm ${norm}`);
    check('sdk: base64 and float embeddings agree', w.length === v.length && v.every((x, i) => Math.abs(x - w[i]) < 1e-6));
    const cos = v.reduce((acc, x, i) => acc + x * u[i], 0);
    check('sdk: two inputs, two different embeddings', e2.data.length === 2 && e2.data[1].index === 1 && cos < 0.9999,
      `cos ${cos}`);
    check('sdk: embeddings usage', e2.usage.prompt_tokens > 4 && e2.usage.total_tokens === e2.usage.prompt_tokens);

    // errors come back as the SDK's typed errors
    try {
      await client.chat.completions.create({ model: 'x', messages, max_tokens: -5 });
      check('sdk: a bad parameter is a BadRequestError', false, 'no error');
    } catch (err) {
      check('sdk: a bad parameter is a BadRequestError', err.status === 400 && err.constructor.name === 'BadRequestError'
        && /max_tokens/.test(err.message), `${err.constructor.name} ${err.status} ${err.message}`);
    }
  } finally {
    const e = await srv.stop();
    check('sdk: server exits 0 on SIGTERM', e.code === 0, JSON.stringify(e) + srv.log());
  }
}

// One streamed chat request through fetch: the text, and whether the
// stream was well formed.
async function streamChat(base, content) {
  const res = await fetch(base + '/v1/chat/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: chatBody(content, { stream: true, max_tokens: 24 }),
  });
  const body = await res.text();
  const sse = parseSSE(body);
  const a = assemble(sse.chunks);
  return { status: res.status, ok: res.status === 200 && sse.wellFormed && a.oneId && a.finish !== null && a.role === 'assistant'
    && res.headers.get('content-type') === 'text/event-stream', text: a.text, body };
}

async function loadTests() {
  const srv = await startServer(['--parallel', '8', '--max-queue', '64']);
  try {
    check('load: server ready', await srv.ready());
    const prompts = Array.from({ length: 25 }, (_, i) => `Tell me of the ${['king', 'prophet', 'river', 'city', 'tribe'][i % 5]}`
      + ` number ${i + 1} and what ${['he', 'it', 'they', 'she', 'we'][(i * 3) % 5]} did`);
    // each request alone first
    const alone = [];
    for (const p of prompts) alone.push(await streamChat(srv.base, p));
    check('load: the requests alone', alone.every((r) => r.ok && r.text.length > 0),
      alone.filter((r) => !r.ok).map((r) => r.body.slice(0, 200)).join(' | '));
    // 8 clients, each all 25 in its own order, at once
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: 8 }, async (_, c) => {
      const out = [];
      for (let k = 0; k < 25; k++) {
        const i = (k * 7 + c * 3) % 25;
        try { out.push({ i, ...(await streamChat(srv.base, prompts[i])) }); } catch (e) { out.push({ i, ok: false, text: '', body: String(e) }); }
      }
      return out;
    }));
    const secs = (performance.now() - t0) / 1000;
    const all = results.flat();
    const errors = all.filter((r) => !r.ok);
    const differ = all.filter((r) => r.ok && r.text !== alone[r.i].text);
    check('load: 200 streamed requests, 0 errors, every stream well formed', all.length === 200 && errors.length === 0,
      `${errors.length} errors: ${errors.slice(0, 2).map((r) => r.status + ' ' + r.body.slice(0, 300)).join(' | ')}`);
    check('load: every answer is what the request gets alone', differ.length === 0,
      `${differ.length} differ, e.g. ${differ[0] ? JSON.stringify(differ[0].text) + ' vs ' + JSON.stringify(alone[differ[0].i].text) : ''}`);
    const steps = await metric(srv.base, 'smallmind_batch_steps_total'), rows = await metric(srv.base, 'smallmind_batch_rows_total');
    console.log(`    load: 200 requests in ${secs.toFixed(2)} s; mean batch ${(rows / steps).toFixed(2)} rows`);
    check('load: the slots ran together (mean batch > 2 rows)', rows / steps > 2, `${rows} rows in ${steps} steps`);
    check('load: no slot busy afterwards', (await metric(srv.base, 'smallmind_slots_busy')) === 0);
  } finally {
    const e = await srv.stop();
    check('load: server exits 0', e.code === 0, JSON.stringify(e));
  }
}

// F16 or Q8_0 KV caches (-ctk T -ctv T): the slots' one-token rows decode in
// one batch, each over its own cache, and give what each request gets alone.
// The Q8_0 run also reads the model into memory (--no-mmap).
async function kvTests(type, extra = []) {
  const srv = await startServer(['--parallel', '4', '-ctk', type, '-ctv', type, ...extra]);
  try {
    check(`kv ${type}: server ready`, await srv.ready());
    const prompts = Array.from({ length: 8 }, (_, i) => `Say what the ${['king', 'river', 'city', 'prophet'][i % 4]} did on day ${i + 1}`);
    const alone = [];
    for (const p of prompts) alone.push(await streamChat(srv.base, p));
    const steps0 = await metric(srv.base, 'smallmind_batch_steps_total'), rows0 = await metric(srv.base, 'smallmind_batch_rows_total');
    const together = (await Promise.all(Array.from({ length: 4 }, async (_, c) => {
      const out = [];
      for (let k = 0; k < 2; k++) out.push({ i: 2 * c + k, ...(await streamChat(srv.base, prompts[2 * c + k])) });
      return out;
    }))).flat();
    check(`kv ${type}: every request answered`, alone.concat(together).every((r) => r.ok && r.text.length > 0));
    const differ = together.filter((r) => r.text !== alone[r.i].text);
    check(`kv ${type}: four at once give what each gets alone`, differ.length === 0,
      differ[0] ? JSON.stringify(differ[0].text) + ' vs ' + JSON.stringify(alone[differ[0].i].text) : '');
    const steps = await metric(srv.base, 'smallmind_batch_steps_total') - steps0;
    const rows = await metric(srv.base, 'smallmind_batch_rows_total') - rows0;
    check(`kv ${type}: the slots ran together (mean batch > 2 rows)`, rows / steps > 2, `${rows} rows in ${steps} steps`);
  } finally {
    const e = await srv.stop();
    check(`kv ${type}: server exits 0`, e.code === 0, JSON.stringify(e));
  }
}

// A client with a 2 KiB receive buffer (Python: Node cannot set
// SO_RCVBUF) that asks for 1900 tokens and reads nothing until told to.
function slowClient(port) {
  return import('node:child_process').then(({ spawn }) => {
    const script = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
s.connect(("127.0.0.1", ${port}))
body = b'{"prompt": "And the LORD spake", "max_tokens": 1900, "stream": true, "temperature": 1.0, "ignore_eos": true}'
s.sendall(b"POST /v1/completions HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body)
print("sent", flush=True)
sys.stdin.readline()
got = b""
while True:
    try:
        d = s.recv(65536)
    except OSError:
        break
    if not d:
        break
    got += d
print(len(got), got.count(b"data: "), b"data: [DONE]" in got, flush=True)
`;
    const py = spawn(process.env.PYTHON || 'python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    py.stdout.on('data', (d) => { out += d; });
    const exit = new Promise((resolve) => py.on('exit', () => resolve(out)));
    const started = new Promise((resolve) => {
      py.on('error', () => resolve(false));
      const t = setInterval(() => { if (out.includes('sent')) { clearInterval(t); resolve(true); } }, 10);
    });
    return { py, started, exit, result: () => (out.trim().split('\n').at(-1).match(/(\d+) (\d+) (\w+)/) || []) };
  });
}

// Until the generated-token count stops moving while a slot is busy.
async function untilPaused(base) {
  let last = -1, still = 0, made = 0, busy = 0;
  for (let k = 0; k < 400 && still < 8; k++) {
    made = await metric(base, 'smallmind_generated_tokens_total');
    busy = await metric(base, 'smallmind_slots_busy');
    still = made === last && busy === 1 ? still + 1 : 0;
    last = made;
    await sleep(25);
  }
  return { paused: still >= 8, made };
}

// A reader that stops reading: its slot pauses once 1 KiB of text wait (no
// more tokens are made for it), goes on when it reads again, and is dropped
// when it reads nothing for --timeout seconds.
async function pausedReader() {
  const srv = await startServer(['-c', '2048', '--timeout', '15', '--parallel', '2']);
  try {
    await srv.ready();
    const a = await slowClient(srv.port);
    if (!(await a.started)) { skip('slow reader', 'python3 is missing'); return; }
    const p = await untilPaused(srv.base);
    check('slow reader: a reader that stops reading pauses its slot', p.paused, `tokens ${p.made}`);
    const served = await streamChat(srv.base, 'Who was Caleb?');
    check('slow reader: ... while the other slots go on', served.ok, served.body.slice(0, 200));
    a.py.stdin.write('go\n');
    await a.exit;
    const [, bytes, events, complete] = a.result();
    check('slow reader: ... and it goes on once the client reads', complete === 'True' && Number(bytes) > 100000,
      `${bytes} bytes, ${events} events, [DONE] ${complete}`);
    const b = await slowClient(srv.port);
    await b.started;
    const t0 = performance.now();
    await sleep(500);
    let busy = 1;
    while (busy !== 0 && performance.now() - t0 < 40000) { busy = await metric(srv.base, 'smallmind_slots_busy'); await sleep(100); }
    b.py.stdin.write('go\n');
    await b.exit;
    const [, , , done] = b.result();
    check('slow reader: a client that reads nothing for --timeout is dropped', busy === 0 && done === 'False',
      `busy ${busy} after ${((performance.now() - t0) / 1000).toFixed(1)} s, [DONE] ${done}`);
  } finally {
    await srv.stop();
  }
}

function errorShape(r, status, pattern) {
  let body = null;
  try { body = JSON.parse(r.body); } catch { /* not JSON */ }
  return r.status === status && body && body.error && typeof body.error.message === 'string'
    && typeof body.error.type === 'string' && (!pattern || pattern.test(body.error.message));
}

async function hostileTests() {
  const srv = await startServer(['--parallel', '4', '--max-body', String(1 << 20), '--timeout', '5', '-c', '2048']);
  const port = srv.port;
  try {
    check('hostile: server ready', await srv.ready());
    const cases = [
      ['malformed JSON', post('/v1/chat/completions', '{"messages": [{"role": "user", "content": "hi"}'), 400, /invalid JSON/],
      ['not JSON at all', post('/v1/chat/completions', 'messages=hi'), 400, /invalid JSON/],
      ['a JSON array', post('/v1/chat/completions', '[1,2,3]'), 400, /object/],
      ['invalid UTF-8', post('/v1/chat/completions', Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"a'),
        Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}]}')])), 400, /invalid JSON/],
      ['a NUL in a string', post('/v1/chat/completions', '{"messages":[{"role":"user","content":"a\\u0000b"}]}'), 400, null],
      ['no messages', post('/v1/chat/completions', '{"model":"x"}'), 400, /messages/],
      ['empty messages', post('/v1/chat/completions', '{"messages":[]}'), 400, /messages/],
      ['content of the wrong type', post('/v1/chat/completions', '{"messages":[{"role":"user","content":5}]}'), 400, /content/],
      ['negative max_tokens', post('/v1/chat/completions', chatBody('hi', { max_tokens: -1 })), 400, /max_tokens/],
      ['huge max_tokens', post('/v1/chat/completions', chatBody('hi', { max_tokens: 1e9 })), 400, /max_tokens/],
      ['max_tokens past 64 bits', post('/v1/chat/completions', '{"messages":[{"role":"user","content":"hi"}],"max_tokens":99999999999999999999999}'), 400, null],
      ['max_tokens not an integer', post('/v1/chat/completions', chatBody('hi', { max_tokens: 2.5 })), 400, /max_tokens/],
      ['max_completion_tokens as text', post('/v1/chat/completions', chatBody('hi', { max_completion_tokens: '5' })), 400, /max_completion_tokens/],
      ['temperature out of range', post('/v1/chat/completions', chatBody('hi', { temperature: 7 })), 400, /temperature/],
      ['n > 1', post('/v1/chat/completions', chatBody('hi', { n: 3 })), 400, /'n'/],
      ['five stop strings', post('/v1/chat/completions', chatBody('hi', { stop: ['a', 'b', 'c', 'd', 'e'] })), 400, /stop/],
      ['a duplicated key', post('/v1/chat/completions', '{"messages":[{"role":"user","content":"hi"}],"stream":true,"stream":false}'), 400, null],
      ['a prompt too long for the context', post('/v1/completions', JSON.stringify({ prompt: 'In the beginning '.repeat(2000) })), 400, /context/],
      ['a token id out of range', post('/v1/completions', JSON.stringify({ prompt: [1, 2, 99999] })), 400, /token/],
      ['deep nesting', post('/v1/chat/completions', '['.repeat(100000) + ']'.repeat(100000)), 400, null],
      ['a bad embeddings input', post('/v1/embeddings', '{"input": {"a": 1}}'), 400, /input/],
      ['unknown path', 'GET /v1/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 404, null],
      ['wrong method', 'GET /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 405, null],
    ];
    for (const [name, bytes, status, pattern] of cases) {
      const r = await rawRequest(port, bytes);
      check(`hostile: ${name} -> ${status}`, errorShape(r, status, pattern), `${r.status} ${r.body.slice(0, 300)}`);
    }
    const unknown = await rawRequest(port, post('/v1/chat/completions', chatBody('hi', { frobnicate: { x: [1] }, user: 'u', logit_bias: {} })));
    check('hostile: unknown fields are ignored (200)', unknown.status === 200 && JSON.parse(unknown.body).choices.length === 1,
      unknown.body.slice(0, 200));

    // a truncated body: Content-Length promises more than comes, then the client leaves
    const trunc = await rawRequest(port, null, { timeout: 1500, writer: (s) => {
      s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"messages":[{"role"');
      setTimeout(() => s.end(), 200);
    } });
    check('hostile: a truncated body gets no answer and breaks nothing', trunc.status === 0 || trunc.status === 400,
      `${trunc.status}`);
    await healthDuring('hostile: after a truncated body', port, 2);

    // 100 MB body: 413 (read and dropped; the client gets its answer)
    {
      const size = 100 << 20;
      const t0 = performance.now();
      const big = rawRequest(port, null, { timeout: 30000, writer: (s) => {
        s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`);
        const block = Buffer.alloc(1 << 20, 0x20);
        let sent = 0;
        const more = () => {
          while (sent < size) {
            sent += block.length;
            if (!s.write(block)) { s.once('drain', more); return; }
          }
        };
        s.on('error', () => {});
        more();
      } });
      await sleep(50);
      await healthDuring('hostile: during a 100 MB body', port, 3);
      const r = await big;
      check('hostile: a 100 MB body -> 413', errorShape(r, 413, /larger/), `${r.status} ${r.error} ${r.body.slice(0, 200)}`);
      console.log(`    100 MB body answered in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    }
    // a declared body past the read-and-drop limit: answered at once
    const huge = await rawRequest(port, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${10 * 2 ** 30}\r\n\r\n`);
    check('hostile: a declared 10 GB body -> 413 at once', errorShape(huge, 413, null), `${huge.status}`);

    // 500 idle connections
    {
      const socks = [];
      await Promise.all(Array.from({ length: 500 }, () => new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1', resolve);
        s.on('error', () => resolve());
        socks.push(s);
      })));
      await sleep(100);
      await healthDuring('hostile: with 500 idle connections', port);
      const r = await rawRequest(port, post('/v1/chat/completions', chatBody('Who was Moses?')));
      check('hostile: served with 500 idle connections open', r.status === 200, r.body.slice(0, 200));
      const open = socks.filter((s) => !s.destroyed && s.readyState === 'open').length;
      check('hostile: the 500 idle connections were accepted', open === 500, `${open} open`);
      for (const s of socks) s.destroy();
    }

    // slowloris: headers one byte at a time
    {
      const slow = net.connect(port, '127.0.0.1');
      slow.on('error', () => {});
      const req = 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\nX-Slow: ' + 'a'.repeat(60);
      let i = 0;
      const timer = setInterval(() => { if (i < req.length && !slow.destroyed) slow.write(req[i++]); }, 50);
      await sleep(300);
      await healthDuring('hostile: during a slowloris client', port);
      const r = await rawRequest(port, post('/v1/completions', JSON.stringify({ prompt: 'And Moses', max_tokens: 8 })));
      check('hostile: served during a slowloris client', r.status === 200, r.body.slice(0, 200));
      clearInterval(timer);
      slow.destroy();
    }

    // a client that vanishes mid-stream frees its slot at once: within a
    // few steps, long before its 250 tokens would have been made
    {
      const gen0 = await metric(srv.base, 'smallmind_generated_tokens_total');
      const gone = await new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => s.write(post('/v1/completions',
          JSON.stringify({ prompt: 'And the LORD said', max_tokens: 250, stream: true, temperature: 0, ignore_eos: true }))));
        let got = '';
        s.on('data', (d) => {
          got += d;
          if (got.includes('data: ')) { s.destroy(); resolve(performance.now()); }
        });
        s.on('error', () => resolve(0));
      });
      let busy = NaN;
      for (let k = 0; k < 500; k++) {
        busy = await metric(srv.base, 'smallmind_slots_busy');
        if (busy === 0) break;
        await sleep(10);
      }
      const ms = Math.round(performance.now() - gone);
      const made = (await metric(srv.base, 'smallmind_generated_tokens_total')) - gen0;
      check('hostile: a client gone mid-stream frees its slot', busy === 0, `slots busy ${busy} ${ms} ms after the client left`);
      console.log(`    slot freed ${ms} ms after the client left, after ${made} of its 250 tokens`);
      await sleep(300);
      const made2 = (await metric(srv.base, 'smallmind_generated_tokens_total')) - gen0;
      check('hostile: ... and its generation stopped', made2 === made && made < 250, `${made} then ${made2} tokens`);
      await healthDuring('hostile: after a vanished client', port, 2);
    }

    // a slow reader does not hold the others up
    {
      const slow = net.connect(port, '127.0.0.1');
      slow.on('error', () => {});
      slow.pause();   // reads nothing
      slow.write(post('/v1/chat/completions', JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(10) }],
        max_tokens: 250, stream: true, temperature: 1.5 })));
      await sleep(200);
      const t0 = performance.now();
      const r = await streamChat(srv.base, 'Who was Aaron?');
      check('hostile: other clients are served beside a reader that reads nothing', r.ok, `${r.status} ${r.body.slice(0, 200)}`);
      console.log(`    served in ${(performance.now() - t0).toFixed(0)} ms beside it`);
      slow.destroy();
    }
    const after = await rawRequest(port, post('/v1/chat/completions', chatBody('Who was Joshua?')));
    check('hostile: still serving at the end', after.status === 200, after.body.slice(0, 200));
  } finally {
    const e = await srv.stop();
    check('hostile: server exits 0', e.code === 0, JSON.stringify(e) + srv.log().slice(-500));
  }

  await pausedReader();

  // the API key
  {
    const s = await startServer(['--api-key', 'sekrit']);
    await s.ready();
    const body = chatBody('hi', { max_tokens: 4 });
    const none = await rawRequest(s.port, post('/v1/chat/completions', body));
    const wrong = await rawRequest(s.port, post('/v1/chat/completions', body, { Authorization: 'Bearer sekrix' }));
    const right = await rawRequest(s.port, post('/v1/chat/completions', body, { Authorization: 'Bearer sekrit' }));
    const models = await rawRequest(s.port, 'GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const health = await rawRequest(s.port, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    check('api key: missing -> 401', errorShape(none, 401, null) && /www-authenticate: bearer/i.test(none.head), none.head);
    check('api key: wrong -> 401', errorShape(wrong, 401, null));
    check('api key: right -> 200', right.status === 200, right.body.slice(0, 200));
    check('api key: /v1/models needs it too', models.status === 401);
    check('api key: /health does not', health.status === 200);
    await s.stop();
  }

  // the queue limit: one slot, one waiting place
  {
    const s = await startServer(['--parallel', '1', '--max-queue', '1', '-c', '2048']);
    await s.ready();
    // ignore_eos: the running one must not end early at an end-of-generation token
    const long = (n) => rawRequest(s.port, post('/v1/completions', JSON.stringify({ prompt: 'And', max_tokens: n,
      temperature: 1.5, ignore_eos: true })), { timeout: 60000 });
    const first = long(1500);
    await sleep(150);
    const second = long(10);
    await sleep(150);
    const third = await long(10);
    check('queue: a request past --max-queue -> 429', errorShape(third, 429, /queue/), `${third.status} ${third.body.slice(0, 200)}`);
    const depth = await metric(s.base, 'smallmind_queue_depth');
    check('queue: /metrics shows the waiting request', depth === 1, `depth ${depth}`);
    const [a, b] = await Promise.all([first, second]);
    check('queue: the running and the waiting request are answered', a.status === 200 && b.status === 200,
      `${a.status} ${a.error} ${a.body.slice(0, 100)} / ${b.status} ${b.error} ${b.body.slice(0, 100)}`);
    await s.stop();
  }

  // 503 while the model loads
  {
    const s = await startServer([], { SMALLMIND_SERVE_LOAD_DELAY_MS: '1500' });
    const h = await rawRequest(s.port, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const c = await rawRequest(s.port, post('/v1/chat/completions', chatBody('hi')));
    check('loading: /health -> 503', errorShape(h, 503, /[Ll]oading/), `${h.status} ${h.body}`);
    check('loading: a completion -> 503', errorShape(c, 503, /[Ll]oading/), `${c.status} ${c.body}`);
    check('loading: then ready', await s.ready(10000));
    await s.stop();
  }

  // SIGTERM lets the streams in flight finish, then exits 0
  {
    const s = await startServer(['-c', '2048']);
    await s.ready();
    const streams = [0, 1].map(() => new Promise((resolve) => {
      let body = '', sawFirst = false;
      const sock = net.connect(s.port, '127.0.0.1', () => sock.write(post('/v1/completions',
        JSON.stringify({ prompt: 'And God said', max_tokens: 600, stream: true, temperature: 1.0 }))));
      sock.on('data', (d) => { body += d; if (!sawFirst && body.includes('data: ')) { sawFirst = true; firstSeen(); } });
      sock.on('close', () => resolve(body));
      sock.on('error', () => resolve(body));
    }));
    let seen = 0, firstSeen;
    const both = new Promise((r) => { firstSeen = () => { if (++seen === 2) r(); }; });
    await both;
    s.proc.kill('SIGTERM');
    await sleep(100);
    const refused = await rawRequest(s.port, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { timeout: 1000 });
    const bodies = await Promise.all(streams);
    const e = await s.exit;
    const complete = bodies.every((b) => {
      const start = b.indexOf('\r\n\r\n');
      // chunked transfer: strip the chunk sizes
      const payload = b.slice(start + 4).replace(/\r\n[0-9a-f]+\r\n/gi, '').replace(/^[0-9a-f]+\r\n/i, '');
      return payload.includes("data: [DONE]") && /"finish_reason":"(length|stop)"/.test(payload);
    });
    check('sigterm: streams in flight run to the end', complete, bodies.map((b) => b.slice(-200)).join(' | '));
    check('sigterm: no new connections meanwhile', refused.status === 0, `${refused.status}`);
    check('sigterm: exit status 0', e.code === 0, JSON.stringify(e) + s.log().slice(-300));
  }
}

async function pageTests() {
  let chromium;
  try { ({ chromium } = await import('playwright-core')); } catch (e) { skip('page', 'playwright-core is not installed'); return; }
  const exe = process.env.CHROMIUM || '/usr/bin/chromium';
  try { execFileSync('test', ['-x', exe]); } catch { skip('page', `${exe} is absent (apt-get install chromium)`); return; }
  const srv = await startServer(['-c', '4096']);
  const profile = mkdtempSync(path.join(os.tmpdir(), 'sm-chromium-'));
  let browser;
  try {
    await srv.ready();
    // a fresh profile: playwright passes it to Chromium as --user-data-dir
    browser = await chromium.launchPersistentContext(profile, { executablePath: exe, headless: true, args: ['--headless',
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'] });
    const page = await browser.newPage();
    // the replies are stopped by a click: ignore_eos keeps them streaming
    // until then (an early end-of-text would leave nothing to stop)
    await page.route('**/v1/chat/completions', async (route) => {
      const body = JSON.parse(route.request().postData());
      await route.continue({ postData: JSON.stringify({ ...body, ignore_eos: true }) });
    });
    const requests = [];
    page.on('request', (r) => { if (r.url().endsWith('/v1/chat/completions')) requests.push(JSON.parse(r.postData())); });
    const outside = [];
    page.on('request', (r) => { if (!r.url().startsWith(srv.base)) outside.push(r.url()); });
    await page.goto(srv.base + '/');
    check('page: served at /', (await page.title()) === 'SmallMind');
    // The built-in model fills the context in a few seconds: on a slow
    // machine a reply can end before the click lands (the status is then
    // empty, not "stopped"); the question is asked again, up to three
    // times, each time on a fresh page (a whole context of history would
    // not fit the next prompt).
    let lengths = [], offered = false, status = '';
    for (let attempt = 0; attempt < 3 && status !== 'stopped'; attempt++) {
      if (attempt > 0) await page.goto(srv.base + '/');
      await page.fill('#system', 'Speak as a prophet.');
      await page.fill('#temperature', '0.7');
      await page.fill('#input', 'What is wisdom?');
      await page.press('#input', 'Enter');
      // the reply grows while it streams
      lengths = [];
      for (let k = 0; k < 200 && lengths.length < 3; k++) {
        const t = await page.textContent('.msg.assistant >> nth=-1');
        if (t && t.length > 0 && t.length !== lengths.at(-1)) lengths.push(t.length);
        await sleep(5);
      }
      offered = !(await page.isDisabled('#stop'));
      // the element's own click, not one at its coordinates: the growing
      // reply moves the layout, and a click aimed a moment before can miss
      await page.locator('#stop').dispatchEvent('click');   // (disabled if the reply has ended: then a no-op)
      await page.waitForFunction(() => !document.getElementById('send').disabled, null, { timeout: 10000 });
      status = await page.textContent('#status');
    }
    const shown = ((await page.textContent('.msg.assistant >> nth=-1')) || '').slice(0, 300);
    check('page: the reply appears as it streams', lengths.length >= 2 && lengths[0] < lengths.at(-1),
      JSON.stringify(lengths) + ' ' + JSON.stringify(shown) + ' ' + srv.log().slice(-400));
    check('page: stop is offered while it streams', offered);
    check('page: stop shows "stopped"', status === 'stopped', JSON.stringify(status));
    const stopped = (await page.textContent('.msg.assistant >> nth=-1')).length;
    await sleep(300);
    check('page: stop ends the reply', (await page.textContent('.msg.assistant >> nth=-1')).length === stopped
      && await page.isDisabled('#stop') && !(await page.isDisabled('#send')));
    let busy = NaN;
    for (let k = 0; k < 50 && busy !== 0; k++) { busy = await metric(srv.base, 'smallmind_slots_busy'); await sleep(20); }
    check('page: the server freed the slot', busy === 0, `busy ${busy}`);
    const req = requests[0] || {};
    check('page: the request carried the system prompt and temperature', req.stream === true && req.temperature === 0.7
      && req.messages && req.messages[0].role === 'system' && req.messages[0].content === 'Speak as a prophet.'
      && req.messages.at(-1).content === 'What is wisdom?', JSON.stringify(req));
    check('page: nothing loaded from elsewhere', outside.length === 0, outside.join(' '));
  } catch (e) {
    check('page: runs in headless Chromium', false, String(e.stack || e));
  } finally {
    if (browser) await browser.close();
    rmSync(profile, { recursive: true, force: true });
    await srv.stop();
  }
}

// The request trace: 6 requests (2 at once, so one waits or runs beside the
// other) into a ring of 4; the trace must hold the last 4, each as queued ->
// prompt -> generate spans in order on the queue's and its slot's tracks,
// with the token counts the responses reported.
async function traceTests() {
  const off = await startServer(['--parallel', '1']);
  try {
    check('trace: server ready (trace off)', await off.ready());
    const r = await fetch(off.base + '/debug/trace');
    const body = await r.json();
    check('trace: off unless enabled (404 naming the option)', r.status === 404
      && /--trace-requests/.test(body.error && body.error.message), `${r.status} ${JSON.stringify(body)}`);
  } finally { await off.stop(); }
  const srv = await startServer(['--parallel', '2', '--trace-requests', '4']);
  try {
    check('trace: server ready', await srv.ready());
    const answers = [];
    for (let round = 0; round < 3; round++) {
      const rs = await Promise.all([0, 1].map((k) => fetch(srv.base + '/v1/chat/completions', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: chatBody(`Tell me of the ${['sea', 'land', 'sky', 'fire', 'rain', 'stars'][round * 2 + k]}.`,
          { max_tokens: 8 + 4 * k }),
      }).then((x) => x.json())));
      answers.push(...rs);
    }
    const t = await (await fetch(srv.base + '/debug/trace')).json();
    const ev = t.traceEvents || [];
    const spans = ev.filter((e) => e.ph === 'X');
    const ids = [...new Set(spans.map((e) => e.args.id))];
    const want = answers.slice(-4).map((a) => a.id);
    check('trace: the last 4 of 6 requests', ids.length === 4 && want.every((id) => ids.includes(id))
      && t.otherData.requests_recorded === 6 && t.otherData.requests_kept === 4, JSON.stringify(ids) + ' ' + JSON.stringify(want));
    const names = ev.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => e.args.name);
    check('trace: tracks named (queue, slot 0, slot 1)', ['queue', 'slot 0', 'slot 1'].every((n) => names.includes(n)),
      JSON.stringify(names));
    let ordered = true, counts = true;
    for (const a of answers.slice(-4)) {
      const mine = spans.filter((e) => e.args.id === a.id);
      const q = mine.find((e) => e.name === 'queued'), p = mine.find((e) => e.name === 'prompt'),
        g = mine.find((e) => e.name === 'generate');
      if (!q || !p || !g || q.tid !== 0 || p.tid < 1 || p.tid !== g.tid) { ordered = false; continue; }
      const eps = 1;   // microseconds of rounding
      if (!(q.ts + q.dur <= p.ts + eps && p.ts + p.dur <= g.ts + eps && q.dur >= 0 && p.dur >= 0 && g.dur >= 0)) ordered = false;
      if (g.args.completion_tokens !== a.usage.completion_tokens || p.args.prompt_tokens !== a.usage.prompt_tokens
        || g.args.finish_reason !== a.choices[0].finish_reason) counts = false;
    }
    check('trace: queued, prompt, generate in order on the queue and slot tracks', ordered, JSON.stringify(spans.slice(0, 6)));
    check('trace: token counts and finish reasons as the responses said', counts);
  } finally { await srv.stop(); }
}

try {
  if (want('sdk')) await sdkTests();
  if (want('load')) await loadTests();
  if (want('kv')) { await kvTests('f16'); await kvTests('q8_0', ['--no-mmap']); }
  if (want('hostile')) await hostileTests();
  if (want('page')) await pageTests();
  if (want('format')) await formatTests();
  if (want('trace')) await traceTests();
  if (want('logprobs')) await logprobsTests();
  if (want('util')) await utilTests();
  if (want('native')) await nativeTests();
  if (want('jinja')) await jinjaTests();
  if (want('tools')) await toolsTests();
  if (want('responses')) await responsesTests();
} catch (e) {
  check('serve tests ran to the end', false, String(e.stack || e));
}
process.exit(finish('serve') ? 0 : 1);
