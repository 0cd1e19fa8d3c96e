// make_server_native_refs.mjs - records llama-server's answers to its own
// POST /completion API (and GET /props), the reference of
// tests/serve/native.mjs.
//   node tests/refs/make_server_native_refs.mjs LLAMA_SERVER
// Each body of tests/refs/server_native/requests.json is sent to
// `LLAMA_SERVER -m models/kjv-3m.gguf -c 512 -np 1` (one slot, so that
// a prompt's cached tokens follow from the request before it, as on the
// test's server), and the status and JSON (streamed: every "data:" event)
// written to responses.jsonl, one line per request; /props to props.json.
// Recorded with llama.cpp c392e509.
import { readFileSync, writeFileSync } from 'node:fs';
import { startLlamaServer } from './llama_server_run.mjs';

const [bin] = process.argv.slice(2);
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
