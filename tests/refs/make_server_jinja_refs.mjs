// make_server_jinja_refs.mjs - records llama-server's --jinja answers to
// POST /apply-template, the reference of tests/serve/jinja.mjs.
//   node tests/refs/make_server_jinja_refs.mjs LLAMA_SERVER [SHARED]
// For the model's own template (models/kjv-chat-3m.gguf) and for templates
// of ../shared/refs/llamacpp/chat-templates.json (by case name, read there
// at test time too), each conversation of requests.json is sent to
// `LLAMA_SERVER -m models/kjv-chat-3m.gguf --jinja [--chat-template-file T]`
// and the status and JSON written to responses.jsonl. Recorded with
// llama.cpp c392e509.
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLlamaServer } from './llama_server_run.mjs';

const [bin, shared = '../shared'] = process.argv.slice(2);
if (!bin) { console.error('usage: make_server_jinja_refs.mjs LLAMA_SERVER [SHARED]'); process.exit(2); }
const DIR = 'tests/refs/server_jinja/';
const { templates, conversations } = JSON.parse(readFileSync(DIR + 'requests.json', 'utf8'));
const cases = JSON.parse(readFileSync(join(shared, 'refs/llamacpp/chat-templates.json'), 'utf8')).cases;
const tmp = mkdtempSync(join(tmpdir(), 'jinja-refs-'));
const out = [];
let port = 18700;
for (const name of templates) {
  const args = ['-m', 'models/kjv-chat-3m.gguf', '--jinja', '-c', '256'];
  if (name) {
    const f = join(tmp, 't.jinja');
    writeFileSync(f, cases.find((c) => c.name === name).template);
    args.push('--chat-template-file', f);
  }
  const srv = await startLlamaServer(bin, args, ++port, name);
  for (const messages of conversations) {
    const res = await fetch(`${srv.base}/apply-template`, { method: 'POST', body: JSON.stringify({ messages }) });
    out.push(JSON.stringify({ template: name, messages, status: res.status, body: await res.json() }));
  }
  await srv.stop();
}
writeFileSync(DIR + 'responses.jsonl', out.join('\n') + '\n');
console.log(`${out.length} answers written to ${DIR}responses.jsonl`);
