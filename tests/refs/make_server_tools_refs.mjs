// make_server_tools_refs.mjs - records llama-server's --jinja answers to
// POST /apply-template for requests with tools, tool calls and tool results,
// the reference of tests/serve/tools.mjs.
//   node tests/refs/make_server_tools_refs.mjs LLAMA_SERVER [SHARED]
// Each request of tests/refs/server_tools/requests.json is sent to
// `LLAMA_SERVER -m models/kjv-chat-3m.gguf --jinja -c 4096 [--chat-template-file T]`
// for each template there (the model's own; a template of
// ../shared/refs/llamacpp/chat-templates.json by case name; a file beside
// requests.json), and the status and JSON written to responses.jsonl.
// Recorded with llama.cpp c392e509.
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLlamaServer } from './llama_server_run.mjs';

const [bin, shared = '../shared'] = process.argv.slice(2);
if (!bin) { console.error('usage: make_server_tools_refs.mjs LLAMA_SERVER [SHARED]'); process.exit(2); }
const DIR = 'tests/refs/server_tools/';
const { templates, requests } = JSON.parse(readFileSync(DIR + 'requests.json', 'utf8'));
const cases = JSON.parse(readFileSync(join(shared, 'refs/llamacpp/chat-templates.json'), 'utf8')).cases;
const tmp = mkdtempSync(join(tmpdir(), 'tools-refs-'));
const out = [];
let port = 18750;
for (const t of templates) {
  const args = ['-m', 'models/kjv-chat-3m.gguf', '--jinja', '-c', '4096'];
  if (t) {
    const f = join(tmp, 't.jinja');
    writeFileSync(f, t.shared ? cases.find((c) => c.name === t.shared).template : readFileSync(DIR + t.file, 'utf8'));
    args.push('--chat-template-file', f);
  }
  const srv = await startLlamaServer(bin, args, ++port, JSON.stringify(t));
  for (let i = 0; i < requests.length; i++) {
    const res = await fetch(`${srv.base}/apply-template`, { method: 'POST', body: JSON.stringify(requests[i]) });
    out.push(JSON.stringify({ template: t, request: i, status: res.status, body: await res.json() }));
  }
  await srv.stop();
}
writeFileSync(DIR + 'responses.jsonl', out.join('\n') + '\n');
console.log(`${out.length} answers written to ${DIR}responses.jsonl`);
