// responses.mjs - OpenAI's Responses API (POST /v1/responses) through the
// official OpenAI SDK (tests/serve/serve_test.mjs's "responses" section).
// A Response is the chat answer to the same conversation, so each check holds
// it against /v1/chat/completions on the same server:
// 1. text: responses.create's output_text and usage are the chat reply's text
//    and token counts (instructions as the system message, input parts joined,
//    max_output_tokens as max_tokens, status incomplete when it cuts the reply);
// 2. streamed: the events come in the Responses order with increasing
//    sequence numbers, their deltas make the same text, response.completed /
//    incomplete carries the whole Response and its usage; the SDK's
//    responses.stream helper gathers them into the same Response;
// 3. tools (--jinja): flat function tools, tool_choice required: a
//    function_call item whose arguments fit the tool's schema (ajv), streamed
//    too; a history with function_call and function_call_output items is the
//    same prompt as chat's assistant tool_calls and tool message (input tokens);
// 4. text.format json_schema: output that parses and fits the schema;
// 5. what a stateless text-only server refuses, refused with a 400 naming it.
import { createRequire } from 'node:module';
import { check, skip, startServer } from './lib.mjs';

const require = createRequire(import.meta.url);
const CHAT = 'models/kjv-chat-3m.gguf';
const weatherParams = { type: 'object', properties: { city: { enum: ['Paris', 'Rome'] }, unit: { enum: ['c', 'f'] } },
  required: ['city', 'unit'] };
const weather = { type: 'function', name: 'get_weather', description: 'Get the weather', parameters: weatherParams };
const weatherChat = { type: 'function', function: { name: 'get_weather', description: 'Get the weather',
  parameters: weatherParams } };

export async function responsesTests() {
  let OpenAI, Ajv2020;
  try {
    ({ default: OpenAI } = await import('openai'));
    Ajv2020 = require('ajv/dist/2020');
  } catch {
    skip('responses', 'the openai and ajv packages are not installed (npm)');
    return;
  }
  const ajv = new Ajv2020({ strict: false });
  const srv = await startServer(['-m', CHAT, '--jinja', '-c', '2048', '--parallel', '2']);
  try {
    check('responses: the server loads', await srv.ready());
    const client = new OpenAI({ baseURL: srv.base + '/v1', apiKey: 'unused', maxRetries: 0 });
    if (!client.responses) {
      skip('responses', 'this openai package has no responses resource');
      return;
    }

    // 1. the same answer as chat
    const chat = await client.chat.completions.create({ model: 'kjv', temperature: 0, max_tokens: 40,
      messages: [{ role: 'system', content: 'Answer from the King James Bible.' },
        { role: 'user', content: 'What does John 3:16 say?' }] });
    const want = chat.choices[0].message.content;
    const r = await client.responses.create({ model: 'kjv', temperature: 0, max_output_tokens: 40,
      instructions: 'Answer from the King James Bible.',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'What does John ' }, { type: 'input_text', text: '3:16 say?' }] }] });
    check('responses: output_text is the chat reply to the same conversation', r.output_text === want && want.length > 0,
      JSON.stringify({ want, got: r.output_text }));
    const cut = chat.choices[0].finish_reason === 'length';
    check('responses: object, status and usage as chat counts them', r.object === 'response' && /^resp_/.test(r.id)
      && r.status === (cut ? 'incomplete' : 'completed') && (!cut || r.incomplete_details?.reason === 'max_output_tokens')
      && r.usage.input_tokens === chat.usage.prompt_tokens && r.usage.output_tokens === chat.usage.completion_tokens
      && r.usage.total_tokens === chat.usage.total_tokens && r.output.length === 1 && r.output[0].type === 'message'
      && r.output[0].role === 'assistant' && r.output[0].content[0].type === 'output_text'
      && r.instructions === 'Answer from the King James Bible.' && r.max_output_tokens === 40,
    JSON.stringify(r).slice(0, 600));
    const plain = await client.responses.create({ model: 'kjv', temperature: 0, max_output_tokens: 40,
      input: 'What does John 3:16 say?' });
    const chat2 = await client.chat.completions.create({ model: 'kjv', temperature: 0, max_tokens: 40,
      messages: [{ role: 'user', content: 'What does John 3:16 say?' }] });
    check('responses: a string input is one user message', plain.output_text === chat2.choices[0].message.content
      && plain.usage.input_tokens === chat2.usage.prompt_tokens, JSON.stringify(plain.output_text));

    // 2. streamed
    const events = [];
    const stream = await client.responses.create({ model: 'kjv', temperature: 0, max_output_tokens: 40, stream: true,
      instructions: 'Answer from the King James Bible.', input: 'What does John 3:16 say?' });
    for await (const ev of stream) events.push(ev);
    const types = events.map((e) => e.type);
    const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
    const last = events[events.length - 1];
    const order = ['response.created', 'response.in_progress', 'response.output_item.added',
      'response.content_part.added', 'response.output_text.delta'];
    check('responses: stream events in the Responses order, sequence numbers 0, 1, 2, ...',
      order.every((t, i) => types[i] === t) && events.every((e, i) => e.sequence_number === i)
      && types.slice(-4).join() === ['response.output_text.done', 'response.content_part.done',
        'response.output_item.done', cut ? 'response.incomplete' : 'response.completed'].join(),
    types.join(' '));
    check('responses: the streamed deltas are the reply, and the closing event holds it with its usage',
      deltas === want && last.response.output[0].content[0].text === want
      && last.response.usage.output_tokens === chat.usage.completion_tokens
      && events.find((e) => e.type === 'response.output_text.done').text === want,
    JSON.stringify({ deltas, want, last }).slice(0, 600));
    const helper = client.responses.stream({ model: 'kjv', temperature: 0, max_output_tokens: 40,
      instructions: 'Answer from the King James Bible.', input: 'What does John 3:16 say?' });
    const fin = await helper.finalResponse();
    check('responses: the SDK\'s responses.stream gathers the events into the same Response',
      fin.output?.[0]?.type === 'message' && fin.output[0].content?.[0]?.text === want,
    JSON.stringify({ want, got: fin.output }).slice(0, 500));

    // 3. tools
    const ask = 'What is the weather in Paris?';
    const call = await client.responses.create({ model: 'kjv', temperature: 0, max_output_tokens: 400, input: ask,
      tools: [weather], tool_choice: 'required' });
    const fc = call.output.find((o) => o.type === 'function_call');
    let args = null;
    try { args = JSON.parse(fc?.arguments); } catch { /* checked below */ }
    check('responses: tool_choice required gives a function_call item whose arguments fit the schema',
      fc && fc.name === 'get_weather' && typeof fc.call_id === 'string' && fc.call_id && ajv.validate(weatherParams, args),
      JSON.stringify(call.output).slice(0, 500));
    const callEvents = [];
    for await (const ev of await client.responses.create({ model: 'kjv', temperature: 0, max_output_tokens: 400,
      input: ask, tools: [weather], tool_choice: 'required', stream: true })) callEvents.push(ev);
    const done = callEvents.find((e) => e.type === 'response.function_call_arguments.done');
    const fin2 = callEvents[callEvents.length - 1].response;
    check('responses: streamed, the call comes as function_call events and in the closing Response',
      done && done.arguments === fc?.arguments && fin2?.output.some((o) => o.type === 'function_call'
        && o.arguments === fc?.arguments && o.name === 'get_weather'), JSON.stringify(callEvents.map((e) => e.type)));
    const history = [{ role: 'user', content: ask },
      { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' },
      { type: 'function_call_output', call_id: 'call_1', output: '{"temp": 21}' }];
    const after = await client.responses.create({ model: 'kjv', temperature: 0, max_output_tokens: 8, input: history,
      tools: [weather] });
    const afterChat = await client.chat.completions.create({ model: 'kjv', temperature: 0, max_tokens: 8,
      tools: [weatherChat], messages: [{ role: 'user', content: ask },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function',
          function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 21}' }] });
    check('responses: function_call and function_call_output items are chat\'s tool_calls and tool message',
      after.usage.input_tokens === afterChat.usage.prompt_tokens && after.usage.input_tokens > 20,
      `${after.usage.input_tokens} vs ${afterChat.usage.prompt_tokens}`);

    // 4. structured output
    const schema = { type: 'object', properties: { book: { enum: ['John', 'Genesis'] }, verse: { type: 'integer' } },
      required: ['book', 'verse'], additionalProperties: false };
    const js = await client.responses.create({ model: 'kjv', temperature: 0, max_output_tokens: 200, input: 'Name a verse.',
      text: { format: { type: 'json_schema', name: 'verse', schema, strict: true } } });
    let parsed = null;
    try { parsed = JSON.parse(js.output_text); } catch { /* checked below */ }
    check('responses: text.format json_schema gives output that fits the schema', parsed && ajv.validate(schema, parsed),
      js.output_text);

    // 5. refused, naming the parameter
    const refused = async (body) => {
      try { await client.responses.create({ model: 'kjv', ...body }); return null; } catch (e) { return e; }
    };
    for (const [what, body, param] of [
      ['previous_response_id', { input: 'Hi', previous_response_id: 'resp_1' }, 'previous_response_id'],
      ['a missing input', {}, 'input'],
      ['an image part', { input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'http://x/y.png' }] }] }, 'input'],
      ['a web_search tool', { input: 'Hi', tools: [{ type: 'web_search' }] }, 'tools'],
      ['a bad max_output_tokens', { input: 'Hi', max_output_tokens: 0 }, 'max_output_tokens'],
    ]) {
      const e = await refused(body);
      check(`responses: ${what} is a 400 naming '${param}'`, e && e.status === 400 && e.param === param, String(e));
    }
  } finally { await srv.stop(); }
}
