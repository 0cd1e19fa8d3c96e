// serve_load.mjs - a load generator for OpenAI-compatible servers (used by
// bench/serve_bench.sh and bench/serve_scaling.sh): CLIENTS concurrent
// clients each send REQUESTS streamed /v1/completions requests, one after
// another, greedy, MAX_TOKENS each (ignore_eos for servers that know it),
// every prompt different (no prompt cache helps). Prints one JSON line:
// aggregate generated tokens per second over the wall time (prompts
// included), aggregate decode tokens per second (the sum over clients of
// each one's tokens after the first over its time from first token to the
// end: the rate tokens stream out at while decoding), and the percentiles
// of time to first token, inter-token latency and request latency.
// Node 18 or later.
//   node bench/serve_load.mjs URL CLIENTS REQUESTS MAX_TOKENS [PROMPT_WORDS]
const [url, clients = '1', requests = '4', maxTokens = '64', promptWords = '16'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node bench/serve_load.mjs URL CLIENTS REQUESTS MAX_TOKENS [PROMPT_WORDS]');
  process.exit(2);
}
const words = ['the', 'king', 'river', 'stone', 'light', 'city', 'house', 'field', 'voice', 'night', 'water', 'bread'];

function prompt(c, r) {
  const out = [`Request ${c}-${r}:`];
  for (let i = 0; i < Number(promptWords); i++) out.push(words[(c * 7 + r * 5 + i * 3) % words.length]);
  return out.join(' ');
}

async function one(c, r) {
  const t0 = performance.now();
  const res = await fetch(url + '/v1/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'bench', prompt: prompt(c, r), max_tokens: Number(maxTokens), temperature: 0,
      stream: true, stream_options: { include_usage: true }, ignore_eos: true, cache_prompt: false }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '', first = 0, pieces = 0, usage = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      if (j.usage) usage = j.usage;
      const t = j.choices && j.choices[0] && j.choices[0].text;
      if (t) {
        pieces++;
        if (!first) first = performance.now();
      }
    }
  }
  const end = performance.now();
  const tokens = usage ? usage.completion_tokens : pieces;
  return { ttft: first - t0, latency: end - t0, itl: tokens > 1 ? (end - first) / (tokens - 1) : 0, tokens,
    decodeTokens: tokens - 1, decodeMs: end - first };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};

const t0 = performance.now();
const perClient = await Promise.all(Array.from({ length: Number(clients) }, async (_, c) => {
  const out = [];
  for (let r = 0; r < Number(requests); r++) out.push(await one(c, r));
  return out;
}));
const wall = (performance.now() - t0) / 1000;
const results = perClient.flat();
const tokens = results.reduce((a, r) => a + r.tokens, 0);
const decode = perClient.reduce((a, rs) => a + 1000 * rs.reduce((x, r) => x + r.decodeTokens, 0)
  / rs.reduce((x, r) => x + r.decodeMs, 0), 0);
const stats = { clients: Number(clients), requests: results.length, tokens, seconds: +wall.toFixed(3),
  tokens_per_second: +(tokens / wall).toFixed(2), decode_tokens_per_second: +decode.toFixed(2) };
for (const k of ['ttft', 'itl', 'latency'])
  for (const p of [50, 90, 99]) stats[`${k}_p${p}_ms`] = +pct(results.map((r) => r[k]), p).toFixed(1);
console.log(JSON.stringify(stats));
