// jinja.mjs - `serve --jinja` (tests/serve/serve_test.mjs's "jinja" section):
// the chat template run as Jinja. For the built-in chat model's own template
// and six of ../shared's llama.cpp test templates (--chat-template-file),
// POST /apply-template of four conversations (one message; a system prompt
// and a reply; two system messages before an assistant; two user turns) is
// answered as llama-server c392e509 --jinja answers it
// (tests/refs/server_jinja/, made by tests/refs/make_server_jinja_refs.mjs).
// Where the template raises an error, llama-server answers 500 with a trace;
// we answer 400 with the template's message and the same template line.
// Then a chat completion runs with --jinja, and a template that cannot run
// stops the server at load, saying why.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, startServer } from './lib.mjs';

const SHARED = process.env.SM_SHARED || '../shared';

const DIR = 'tests/refs/server_jinja/';

async function applyTemplate(base, messages) {
  const res = await fetch(base + '/apply-template', { method: 'POST', body: JSON.stringify({ messages }) });
  return { status: res.status, body: await res.json() };
}

export async function jinjaTests() {
  const fixture = join(SHARED, 'refs/llamacpp/chat-templates.json');
  let cases;
  try { cases = JSON.parse(readFileSync(fixture, 'utf8')).cases; } catch {
    check('jinja: ../shared is present', false, `cannot read ${fixture}`);
    return;
  }
  const want = readFileSync(DIR + 'responses.jsonl', 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  const tmp = mkdtempSync(join(tmpdir(), 'sm-jinja-'));
  try {
    const names = [...new Set(want.map((w) => w.template))];
    check('jinja: recorded answers for 7 templates', names.length === 7 && want.length === 28);
    for (const name of names) {
      const args = ['-m', 'models/kjv-chat-3m.gguf', '--jinja'];
      if (name) {
        const f = join(tmp, 'template.jinja');
        writeFileSync(f, cases.find((c) => c.name === name).template);
        args.push('--chat-template-file', f);
      }
      const srv = await startServer(args);
      try {
        const label = name ? name.split(' ')[0] : "the model's template";
        check(`jinja: the server loads with ${label}`, await srv.ready());
        for (const w of want.filter((x) => x.template === name)) {
          const got = await applyTemplate(srv.base, w.messages);
          const what = `jinja: ${label}, ${w.messages.map((m) => m.role).join('/')}`;
          if (w.status === 200) {
            check(`${what}: the prompt llama-server makes`, got.status === 200 && got.body.prompt === w.body.prompt,
              `got ${got.status} ${JSON.stringify(got.body).slice(0, 300)}\n    want ${JSON.stringify(w.body.prompt).slice(0, 300)}`);
          } else {
            const msg = w.body.error.message, raised = msg.slice(0, msg.indexOf(' at row '));
            const row = /at row (\d+)/.exec(msg)[1];
            const m = got.body.error ? got.body.error.message : '';
            check(`${what}: the template's error, as a 400 naming line ${row}`,
              got.status === 400 && m.includes(raised) && m.includes(`chat template line ${row}:`), JSON.stringify(got));
          }
        }
        if (!name) {
          const res = await fetch(srv.base + '/v1/chat/completions', { method: 'POST', body: JSON.stringify({
            messages: [{ role: 'user', content: 'What does John 3:16 say?' }], max_tokens: 8, temperature: 0 }) });
          const body = await res.json();
          check('jinja: a chat completion runs', res.status === 200 && body.choices[0].message.content.length > 0,
            JSON.stringify(body).slice(0, 300));
        }
      } finally { await srv.stop(); }
    }
    // a template that cannot run: the load fails and the server exits, saying why
    const broken = join(tmp, 'broken.jinja');
    writeFileSync(broken, '{% for m in messages %}{{ m.content }}');
    const srv = await startServer(['-m', 'models/kjv-chat-3m.gguf', '--jinja', '--chat-template-file', broken]);
    const e = await Promise.race([srv.exit, new Promise((r) => setTimeout(() => r(null), 30000))]);
    check('jinja: a template that cannot run stops the load, saying why',
      e && e.code === 1 && /error: the chat template cannot be run as Jinja: chat template line 1: \{% for %\} without \{% endfor %\}/.test(srv.log()),
      srv.log().slice(-400));
    await srv.stop();
  } finally { rmSync(tmp, { recursive: true, force: true }); }
}
