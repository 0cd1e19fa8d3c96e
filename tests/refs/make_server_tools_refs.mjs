// make_server_tools_refs.mjs - records llama-server's --jinja answers to
// POST /apply-template for requests with tools, tool calls and tool results,
// the reference of tests/serve/tools.mjs.
//   node tests/refs/make_server_tools_refs.mjs LLAMA_SERVER [SHARED]
// Each request of tests/refs/server_tools/requests.json is sent to
// `LLAMA_SERVER -m models/kjv-chat-3m.gguf --jinja -c 4096 [--chat-template-file T]`
// for each template there (the model's own; a template of
// ../shared/refs/llamacpp/chat-templates.json by case name; a file beside
// requests.json), and the status and JSON written to responses.jsonl; then
// its chat requests (tools, tool_choice "required") with each of its
// chat_templates (all, or the ones a template lists), llama-server's reply
// written to replies.jsonl.
// Recorded with llama.cpp c392e509.
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLlamaServer } from './llama_server_run.mjs';

const [bin, shared = '../shared'] = process.argv.slice(2);
if (!bin) { console.error('usage: make_server_tools_refs.mjs LLAMA_SERVER [SHARED]'); process.exit(2); }
const DIR = 'tests/refs/server_tools/';
const { templates, requests, chats, chat_templates: chatTemplates } = JSON.parse(readFileSync(DIR + 'requests.json', 'utf8'));
const cases = JSON.parse(readFileSync(join(shared, 'refs/llamacpp/chat-templates.json'), 'utf8')).cases;
const tmp = mkdtempSync(join(tmpdir(), 'tools-refs-'));
// a template of requests.json in a file
const templateFile = (t) => {
  const f = join(tmp, 't.jinja');
  writeFileSync(f, t.shared ? cases.find((c) => c.name === t.shared).template : readFileSync(DIR + t.file, 'utf8'));
  return f;
};
const out = [];
let port = 18750;
for (const t of templates) {
  const args = ['-m', 'models/kjv-chat-3m.gguf', '--jinja', '-c', '4096'];
  if (t) args.push('--chat-template-file', templateFile(t));
  const srv = await startLlamaServer(bin, args, ++port, JSON.stringify(t));
  for (let i = 0; i < requests.length; i++) {
    const res = await fetch(`${srv.base}/apply-template`, { method: 'POST', body: JSON.stringify(requests[i]) });
    out.push(JSON.stringify({ template: t, request: i, status: res.status, body: await res.json() }));
  }
  await srv.stop();
}
writeFileSync(DIR + 'responses.jsonl', out.join('\n') + '\n');
console.log(`${out.length} answers written to ${DIR}responses.jsonl`);

// the replies: each chat request with each of chat_templates, greedy, the
// message and finish_reason llama-server answers with
const chatOut = [];
for (const t of chatTemplates) {
  const srv = await startLlamaServer(bin, ['-m', 'models/kjv-chat-3m.gguf', '--jinja', '-c', '4096',
    '--chat-template-file', templateFile(t)], ++port, JSON.stringify(t));
  for (const i of t.chats ?? chats.map((_, k) => k)) {
    const res = await fetch(`${srv.base}/v1/chat/completions`, { method: 'POST',
      headers: { 'content-type': 'application/json' }, body: JSON.stringify(chats[i]) });
    const body = await res.json();
    chatOut.push(JSON.stringify({ template: t, chat: i, status: res.status,
      message: body.choices?.[0]?.message ?? null, finish_reason: body.choices?.[0]?.finish_reason ?? null }));
  }
  await srv.stop();
}
writeFileSync(DIR + 'replies.jsonl', chatOut.join('\n') + '\n');
console.log(`${chatOut.length} replies written to ${DIR}replies.jsonl`);
