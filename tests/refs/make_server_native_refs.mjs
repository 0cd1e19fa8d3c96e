// make_server_native_refs.mjs - records llama-server's answers to its own
// POST /completion API (and GET /props, and POST /infill), the reference of
// tests/serve/native.mjs.
//   node tests/refs/make_server_native_refs.mjs LLAMA_SERVER [SHARED [SMALLMIND]]
// Each body of tests/refs/server_native/requests.json is sent to
// `LLAMA_SERVER -m models/kjv-3m.gguf -c 512 -np 1` (one slot, so that
// a prompt's cached tokens follow from the request before it, as on the
// test's server), and the status and JSON (streamed: every "data:" event)
// written to responses.jsonl, one line per request; /props to props.json.
// Then each /infill body of requests.json ("infill") to a server of its
// model (made as "infill_comment" says; SMALLMIND, default build/smallmind,
// writes the DeepSeek one from SHARED's vocabulary) with -c 4096 -np 1
// (--spm-infill where a body says spm), to infill.jsonl with the model
// file's sha256.
// Recorded with llama.cpp c392e509.
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLlamaServer } from './llama_server_run.mjs';
import { infillModels } from './server_native/models.mjs';

const [bin, shared = '../shared', sm = 'build/smallmind'] = process.argv.slice(2);
if (!bin) { console.error('usage: make_server_native_refs.mjs LLAMA_SERVER'); process.exit(2); }
const DIR = 'tests/refs/server_native/';
const { requests } = JSON.parse(readFileSync(DIR + 'requests.json', 'utf8'));
const srv = await startLlamaServer(bin, ['-m', 'models/kjv-3m.gguf', '-c', '512', '-np', '1'], 18790, 'kjv-3m');
const out = [];
for (let i = 0; i < requests.length; i++) {
  const res = await fetch(`${srv.base}/completion`, { method: 'POST', body: JSON.stringify(requests[i]) });
  const text = await res.text();
  const body = requests[i].stream && res.status === 200
    ? text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6))
    : JSON.parse(text);
  out.push(JSON.stringify({ request: i, status: res.status, body, raw_tail: requests[i].stream ? text.slice(-40) : undefined }));
}
writeFileSync(DIR + 'responses.jsonl', out.join('\n') + '\n');
const props = await (await fetch(`${srv.base}/props`)).json();
writeFileSync(DIR + 'props.json', JSON.stringify(props, null, 1) + '\n');
await srv.stop();
console.log(`${out.length} answers written to ${DIR}responses.jsonl, /props to ${DIR}props.json`);

const { infill } = JSON.parse(readFileSync(DIR + 'requests.json', 'utf8'));
const tmp = mkdtempSync(join(tmpdir(), 'infill-refs-'));
const models = infillModels(tmp, shared, sm);
const fill = [];
let port = 18800;
for (const model of ['deepseek', 'qwen', 'kjv'])
  for (const spm of [false, true]) {
    const cases = infill.map((c, i) => ({ ...c, i })).filter((c) => c.model === model && !!c.spm === spm);
    if (!cases.length) continue;
    const args = ['-m', models[model], '-c', '4096', '-np', '1', ...(spm ? ['--spm-infill'] : [])];
    const s = await startLlamaServer(bin, args, ++port, model);
    for (const c of cases) {
      const res = await fetch(`${s.base}/infill`, { method: 'POST', body: JSON.stringify(c.body) });
      const text = await res.text();
      const body = c.body.stream && res.status === 200
        ? text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)) : JSON.parse(text);
      fill.push(JSON.stringify({ request: c.i, model, sha256: sha(models[model]), status: res.status, body }));
    }
    await s.stop();
  }
fill.sort((a, b) => JSON.parse(a).request - JSON.parse(b).request);
writeFileSync(DIR + 'infill.jsonl', fill.join('\n') + '\n');
console.log(`${fill.length} /infill answers written to ${DIR}infill.jsonl`);

function sha(f) { return createHash('sha256').update(readFileSync(f)).digest('hex'); }
