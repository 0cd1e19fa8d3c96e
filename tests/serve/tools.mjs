// tools.mjs - tool calling with `serve --jinja` (tests/serve/serve_test.mjs's
// "tools" section).
// 1. The prompt: for the built-in chat model's own template (which knows no
//    tools: minja's polyfills describe them, write the calls and the results),
//    two of ../shared's llama.cpp test templates that take tools (ChatGLM4,
//    granite), its Mistral Nemo template, and templates of ours in the manner
//    of each of llama.cpp's tool formats (tests/refs/server_tools/*.jinja:
//    Hermes, Llama 3.x, Functionary v3.1 and v3.2, Firefunction v2, Command
//    R7B, DeepSeek R1), POST /apply-template of nine requests (tools offered,
//    a required call, a history with a call and its result, that history
//    without tools, parallel calls, tool_choice none, a history ending with a
//    result, that one with the call's reasoning_content, a tool written in
//    another key order with a key llama.cpp drops) is answered as llama-server c392e509 --jinja answers it
//    (tests/refs/server_tools/, made by tests/refs/make_server_tools_refs.mjs).
// 2. The reply: with tool_choice "required" each format's grammar holds the
//    built-in model to a call, which is read back into the message llama-server
//    answers with (replies.jsonl; how each format's replies are read, text,
//    reasoning and calls, is tests/unit/test_server_tools.c's), and streamed
//    (which llama-server c392e509 refuses) the same message as the OpenAI SDK
//    gathers the chunks, thinking after a prompt that opens it streamed as
//    reasoning_content; the generic
//    JSON format and the Hermes template answer with tool calls whose
//    arguments an independent validator (ajv) accepts against the tool's
//    schema; the official OpenAI SDK reads them; a history with a call and its
//    result runs.
// 3. What llama-server refuses, refused the same way.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { check, skip, startServer, SM } from './lib.mjs';

const require = createRequire(import.meta.url);
const SHARED = process.env.SM_SHARED || '../shared';
const DIR = 'tests/refs/server_tools/';
const CHAT = 'models/kjv-chat-3m.gguf';

const post = (base, path, body) => fetch(base + path, { method: 'POST', body: JSON.stringify(body) })
  .then(async (r) => ({ status: r.status, body: await r.json() }));

// tools whose arguments are few enough for a 3M-parameter model to finish
const weather = { type: 'function', function: { name: 'get_weather', description: 'Get the weather',
  parameters: { type: 'object', properties: { city: { enum: ['Paris', 'Rome'] }, unit: { enum: ['c', 'f'] } },
    required: ['city', 'unit'] } } };
const verse = { type: 'function', function: { name: 'find_verse',
  parameters: { type: 'object', properties: { book: { enum: ['John', 'Genesis'] } }, required: ['book'] } } };
const ask = [{ role: 'user', content: 'What is the weather in Paris?' }];

// The choices of a streamed answer's chunks, in order (each "data: {...}" line's first choice).
function sseChoices(sse) {
  return sse.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)).choices[0]);
}

// A stream's text in several deltas shows it goes out as it is written, but how many a reply of a few
// dozen tokens takes depends on how often the connection's reader runs beside the slot, which a loaded
// machine stretches (a CI run once saw 12 tokens arrive in one): the stream is asked for again, up to
// three times, until one answer has its text in enough deltas. Returns the last answer's SSE text.
async function streamedInDeltas(base, body, enough) {
  let sse = '';
  for (let i = 0; i < 3; i++) {
    sse = await fetch(base + '/v1/chat/completions', { method: 'POST', body: JSON.stringify({ ...body, stream: true }) })
      .then((x) => x.text());
    if (enough(sseChoices(sse)))
      break;
  }
  return sse;
}

// the SDK's streaming helper, which gathers the chunks into a message (openai 4.x has it under beta)
const sdkStream = (client, body) => (client.chat.completions.stream ? client.chat.completions : client.beta.chat.completions)
  .stream(body);

// the calls are OpenAI's shape and each one's arguments fit its tool's schema
function callsValid(ajv, message, tools) {
  const calls = message.tool_calls;
  if (!Array.isArray(calls) || calls.length === 0 || message.content !== null) return 'no tool calls: ' + JSON.stringify(message);
  for (const c of calls) {
    const tool = tools.find((t) => t.function.name === c.function?.name);
    if (c.type !== 'function' || !tool || typeof c.id !== 'string' || !c.id) return 'bad call ' + JSON.stringify(c);
    let args;
    try { args = JSON.parse(c.function.arguments); } catch { return 'arguments are not JSON: ' + c.function.arguments; }
    if (!ajv.validate(tool.function.parameters, args)) return 'arguments ' + c.function.arguments + ': ' + ajv.errorsText();
  }
  return '';
}

export async function toolsTests() {
  let OpenAI, Ajv2020;
  try {
    ({ default: OpenAI } = await import('openai'));
    Ajv2020 = require('ajv/dist/2020');
  } catch {
    skip('tools', 'the openai and ajv packages are not installed (npm)');
    return;
  }
  const ajv = new Ajv2020({ strict: false });
  let cases;
  try { cases = JSON.parse(readFileSync(join(SHARED, 'refs/llamacpp/chat-templates.json'), 'utf8')).cases; } catch {
    check('tools: ../shared is present', false, 'cannot read its chat-templates.json');
    return;
  }
  const { templates, requests, chats, chat_templates: chatTemplates } = JSON.parse(readFileSync(DIR + 'requests.json', 'utf8'));
  const jsonl = (f) => readFileSync(DIR + f, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  const want = jsonl('responses.jsonl'), replies = jsonl('replies.jsonl');
  check('tools: recorded answers for 11 templates x 9 requests, replies for 8 templates',
    want.length === 99 && templates.length === 11 && replies.length === 16 && chatTemplates.length === 8);
  const tmp = mkdtempSync(join(tmpdir(), 'sm-tools-'));
  try {
    // 1. prompts
    const templateFile = (t) => {
      const f = join(tmp, 'template.jinja');
      writeFileSync(f, t.shared ? cases.find((c) => c.name === t.shared).template : readFileSync(DIR + t.file, 'utf8'));
      return f;
    };
    const labelOf = (t) => !t ? "the model's template" : (t.shared || t.file).split(' (')[0];
    for (const t of templates) {
      const args = ['-m', CHAT, '--jinja', '-c', '4096'];
      const label = labelOf(t);
      if (t) args.push('--chat-template-file', templateFile(t));
      const srv = await startServer(args);
      try {
        check(`tools: the server loads with ${label}`, await srv.ready());
        for (const w of want.filter((x) => JSON.stringify(x.template) === JSON.stringify(t))) {
          const got = await post(srv.base, '/apply-template', requests[w.request]);
          // a template that raises an error: llama-server's 500 is a 400 here (the request, not the server, is
          // at fault; OpenAI clients retry a 5xx), with the template's message
          const raised = w.status === 500 && got.status === 400 &&
            got.body.error?.message.includes(w.body.error.message.split(' at row ')[0]);
          check(`tools: ${label}, request ${w.request}: the prompt llama-server makes`,
            (got.status === 200 && w.status === 200 && got.body.prompt === w.body.prompt) || raised,
            `got ${got.status} ${JSON.stringify(got.body).slice(0, 400)}\n    want ${JSON.stringify(w.body).slice(0, 400)}`);
        }
      } finally { await srv.stop(); }
    }

    // 2a. replies in each of llama.cpp's formats (Hermes, Llama 3.x with a
    // built-in tool, Mistral Nemo, Functionary v3.1/v3.2, Firefunction v2,
    // Command R7B, DeepSeek R1), held by the format's grammar: the message
    // llama-server answers with, read back the same (ids: ours where it
    // leaves them empty, which clients need to answer a call)
    for (const t of chatTemplates) {
      const label = labelOf(t);
      const srv = await startServer(['-m', CHAT, '--jinja', '-c', '4096', '--chat-template-file', templateFile(t)]);
      try {
        check(`tools: ${label}: the server loads`, await srv.ready());
        for (const w of replies.filter((x) => JSON.stringify(x.template) === JSON.stringify(t))) {
          const r = await post(srv.base, '/v1/chat/completions', chats[w.chat]);
          const got = r.body.choices?.[0] ?? {};
          // ids: each one present and unique (llama-server's are empty, or Command R7B's the model wrote)
          const norm = (m) => JSON.stringify({ ...m, tool_calls: m?.tool_calls?.map((c) => ({ ...c, id: undefined })) });
          const gotIds = got.message?.tool_calls?.map((c) => c.id) ?? [];
          check(`tools: ${label}, reply ${w.chat}: llama-server's message and finish_reason`,
            r.status === w.status && got.finish_reason === w.finish_reason && norm(got.message) === norm(w.message) &&
            gotIds.every((id) => typeof id === 'string' && id) && new Set(gotIds).size === gotIds.length,
            `got ${r.status} ${JSON.stringify(got).slice(0, 500)}\n    want ${JSON.stringify(w).slice(0, 500)}`);
          // streamed, as the OpenAI SDK gathers the chunks: the same message (the calls come whole once read)
          const client = new OpenAI({ baseURL: srv.base + '/v1', apiKey: 'unused', maxRetries: 0 });
          let streamed;
          try {
            streamed = (await sdkStream(client, { model: 'kjv', ...chats[w.chat] }).finalChatCompletion()).choices[0];
          } catch (err) { streamed = { error: String(err) }; }
          const plain = (m) => JSON.stringify({ content: m?.content || null, reasoning_content: m?.reasoning_content,
            tool_calls: m?.tool_calls?.map((c) => [c.type, c.function?.name, c.function?.arguments, !!c.id]) });
          check(`tools: ${label}, reply ${w.chat} streamed: llama-server's message and finish_reason`,
            streamed.finish_reason === w.finish_reason && plain(streamed.message) === plain({ ...w.message,
              tool_calls: w.message.tool_calls?.map((c) => ({ ...c, id: 'x' })) }),
            `got ${JSON.stringify(streamed).slice(0, 500)}\n    want ${JSON.stringify(w).slice(0, 500)}`);
        }
        if (t.file === 'deepseek.jinja') {
          // its prompt opens the reply's thinking ("<think>"): a stream sends it as reasoning_content as it comes
          // (a reply cut short is its text, as llama-server: here all of it thinking, never closed)
          // (256 tokens, which never close the thinking: 19 to 108 deltas beside three busy processes on two cores)
          const body = { messages: [{ role: 'user', content: 'Who made the heaven?' }], temperature: 0, max_tokens: 256 };
          const whole = await post(srv.base, '/v1/chat/completions', body);
          const sse = await streamedInDeltas(srv.base, body,
            (ch) => ch.filter((c) => c.delta.reasoning_content).length >= 2);
          const deltas = sseChoices(sse).map((c) => c.delta);
          const thought = deltas.filter((d) => d.reasoning_content).map((d) => d.reasoning_content);
          check(`tools: ${label}: a streamed reply after the prompt's <think> comes as reasoning_content as it is written`,
            thought.length >= 2 && thought.join('') === whole.body.choices[0].message.content &&
            !deltas.some((d) => d.content), sse.slice(0, 800));
        }
      } finally { await srv.stop(); }
    }

    // 2. replies: the model's template (generic JSON format) and the Hermes one
    for (const hermes of [false, true]) {
      const args = ['-m', CHAT, '--jinja', '-c', '2048'];
      if (hermes) args.push('--chat-template-file', DIR + 'hermes.jinja');
      const label = hermes ? 'hermes template' : 'generic format';
      const srv = await startServer(args);
      try {
        check(`tools: ${label}: the server loads`, await srv.ready());
        const tools = [weather, verse];
        const r = await post(srv.base, '/v1/chat/completions', { messages: ask, tools, tool_choice: 'required',
          temperature: 0, max_tokens: 400 });
        const msg = r.body.choices?.[0]?.message ?? {};
        const bad = r.status === 200 ? callsValid(ajv, msg, tools) : 'status ' + r.status;
        check(`tools: ${label}: tool_choice required answers with tool calls whose arguments fit the schema`,
          !bad && r.body.choices[0].finish_reason === 'tool_calls', bad + ' ' + JSON.stringify(r.body).slice(0, 500));
        if (!hermes) {
          // the official SDK, as an application calls it, and the turn after the tool's result
          const client = new OpenAI({ baseURL: srv.base + '/v1', apiKey: 'unused', maxRetries: 0 });
          const c = await client.chat.completions.create({ model: 'kjv', messages: ask, tools: [weather],
            tool_choice: 'required', temperature: 0, max_tokens: 400 });
          const call = c.choices[0].message.tool_calls?.[0];
          check('tools: the OpenAI SDK reads the call', call && call.function.name === 'get_weather' &&
            ajv.validate(weather.function.parameters, JSON.parse(call.function.arguments)), JSON.stringify(c.choices[0]));
          const next = await client.chat.completions.create({ model: 'kjv', temperature: 0, max_tokens: 300, tools: [weather],
            messages: [...ask, c.choices[0].message, { role: 'tool', tool_call_id: call?.id ?? 'x', content: '{"temp": 21}' }] });
          const m = next.choices[0].message;
          check('tools: the turn after the tool result runs (a reply or another call)',
            (typeof m.content === 'string' && !m.tool_calls) || callsValid(ajv, m, [weather]) === '', JSON.stringify(next.choices[0]));
        } else {
          // "auto": the Hermes reply is free text here (no lazy grammar), read as text without calls
          const a = await post(srv.base, '/v1/chat/completions', { messages: ask, tools, temperature: 0, max_tokens: 24 });
          check('tools: hermes template: an auto reply without <tool_call> is text',
            a.status === 200 && typeof a.body.choices[0].message.content === 'string' && !a.body.choices[0].message.tool_calls,
            JSON.stringify(a.body).slice(0, 300));
          // streamed, its text comes as it is written (no call in it can start), the same text in all
          const sse = await streamedInDeltas(srv.base, { messages: ask, tools, temperature: 0, max_tokens: 24 },
            (ch) => ch.filter((c) => c.delta.content).length > 5);
          const deltas = sseChoices(sse);
          const pieces = deltas.filter((d) => d.delta.content).map((d) => d.delta.content);
          check('tools: hermes template: a streamed auto reply sends its text token by token, as the whole reply',
            pieces.length > 5 && pieces.join('') === a.body.choices[0].message.content &&
            deltas.at(-1).finish_reason === a.body.choices[0].finish_reason, sse.slice(0, 600));
        }
        // 3. refusals with --jinja
        const refuse = async (what, body, pattern) => {
          const e = await post(srv.base, '/v1/chat/completions', body);
          check(`tools: ${label}: ${what} is a 400`, e.status === 400 && pattern.test(e.body.error?.message ?? ''),
            JSON.stringify(e.body));
        };
        if (!hermes) {
          // streamed (llama-server c392e509 refuses tools with stream; OpenAI's API and later llama-servers send them)
          const client = new OpenAI({ baseURL: srv.base + '/v1', apiKey: 'unused', maxRetries: 0 });
          const fin = await sdkStream(client, { model: 'kjv', messages: ask, tools, tool_choice: 'required',
            temperature: 0, max_tokens: 400 }).finalChatCompletion();
          const sbad = callsValid(ajv, { ...fin.choices[0].message, content: fin.choices[0].message.content ?? null }, tools);
          check('tools: generic format: a streamed required reply gathers into tool calls that fit the schema',
            !sbad && fin.choices[0].finish_reason === 'tool_calls', sbad + ' ' + JSON.stringify(fin.choices[0]).slice(0, 500));
          await refuse('an unknown tool_choice', { messages: ask, tools, tool_choice: 'sometimes' }, /tool_choice/);
          await refuse('a tool that is not a function', { messages: ask, tools: [{ type: 'retrieval' }] }, /tools\[0\]/);
          await refuse('a tool call without a function', { messages: [...ask, { role: 'assistant', content: null,
            tool_calls: [{ type: 'function' }] }] }, /tool_calls\[0\]/);
          await refuse('arguments that are not a string', { messages: [...ask, { role: 'assistant', content: null,
            tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } }] }] },
          /arguments must be a string/);
        }
      } finally { await srv.stop(); }
    }
    // --reasoning-format takes llama-server's two values (how each reads a reply: test_server_tools.c)
    const bad = spawnSync(SM, ['serve', '-m', CHAT, '--jinja', '--reasoning-format', 'sometimes'], { encoding: 'utf8' });
    check('tools: --reasoning-format other than deepseek or none is a usage error',
      bad.status === 2 && /--reasoning-format takes deepseek or none/.test(bad.stderr), `${bad.status} ${bad.stderr}`);
    // without --jinja, as llama-server
    const srv = await startServer(['-m', CHAT]);
    try {
      await srv.ready();
      const a = await post(srv.base, '/v1/chat/completions', { messages: ask, tools: [weather] });
      check('tools: without --jinja, tools are a 400 (as llama-server)',
        a.status === 400 && /tools param requires --jinja flag/.test(a.body.error?.message), JSON.stringify(a.body));
      const b = await post(srv.base, '/v1/chat/completions', { messages: ask, tool_choice: 'auto' });
      check('tools: without --jinja, tool_choice is a 400 (as llama-server)',
        b.status === 400 && /Unsupported param: tool_choice/.test(b.body.error?.message), JSON.stringify(b.body));
      const c = await post(srv.base, '/v1/chat/completions', { messages: ask, tools: [], max_tokens: 4 });
      check('tools: an empty tools list is no tools', c.status === 200, JSON.stringify(c.body));
    } finally { await srv.stop(); }
  } finally { rmSync(tmp, { recursive: true, force: true }); }
}
