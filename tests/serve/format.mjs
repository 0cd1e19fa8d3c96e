// format.mjs - the server's response_format (tests/serve/serve_test.mjs's
// "format" section), through the official OpenAI Node SDK:
//   json_schema  every schema of tests/grammar/schemas.json, all at once on
//                four slots (one matcher each, one batch): the reply parses
//                and an independent validator (ajv, draft 2020-12, with
//                ajv-formats) accepts it; the server refuses exactly the
//                schemas `smallmind run --json-schema` refuses
//   streaming    sampled (temperature 1, seeded) streams of a few schemas
//   json_object  sampled text completions: each begins an object and each
//                that ends is a JSON object
//   bad          a schema with a keyword a grammar cannot enforce, an unknown
//                type, a json_schema without an object: 400 naming
//                response_format; the server serves on
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { SM, MODEL, check, skip, startServer, healthMs } from './lib.mjs';

const require = createRequire(import.meta.url);
const SCHEMAS = 'tests/grammar/schemas.json';

// Whether `smallmind run --json-schema` refuses the schema.
function runRefuses(schema) {
  try {
    execFileSync(SM, ['run', '-m', MODEL, '-p', 'x', '-n', '1', '--json-schema', JSON.stringify(schema)],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    return false;
  } catch {
    return true;
  }
}

export async function formatTests() {
  let OpenAI, Ajv2020, addFormats;
  try {
    ({ default: OpenAI } = await import('openai'));
    Ajv2020 = require('ajv/dist/2020');
    addFormats = require('ajv-formats');
  } catch {
    skip('format', 'the openai and ajv packages are not installed (npm)');
    return;
  }
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const schemas = JSON.parse(readFileSync(SCHEMAS, 'utf8'));
  const validate = (i, text) => {
    let doc;
    try { doc = JSON.parse(text); } catch (e) { return `not JSON (${e.message})`; }
    const v = ajv.compile(schemas[i]);
    return v(doc) ? null : ajv.errorsText(v.errors);
  };
  const srv = await startServer(['--parallel', '4']);
  try {
    check('format: server ready', await srv.ready());
    const client = new OpenAI({ baseURL: srv.base + '/v1', apiKey: 'unused', maxRetries: 0 });
    const messages = [{ role: 'user', content: 'Answer in JSON.' }];
    const withSchema = (i, extra = {}) => ({ model: 'x', messages, max_tokens: 200, temperature: 0,
      response_format: { type: 'json_schema', json_schema: { name: `s${i}`, schema: schemas[i], strict: true } }, ...extra });

    // every schema at once: more requests than slots, so matchers share batches
    const results = await Promise.all(schemas.map((_, i) => client.chat.completions.create(withSchema(i))
      .then((r) => ({ r }), (e) => ({ e }))));
    let valid = 0, refused = 0;
    const bad = [];
    results.forEach(({ r, e }, i) => {
      if (e) {
        if (e.status === 400 && runRefuses(schemas[i])) { refused++; return; }
        bad.push(`schema ${i}: ${e.status} ${e.message}`);
        return;
      }
      const c = r.choices[0], why = validate(i, c.message.content);
      if (c.finish_reason === 'stop' && !why) valid++;
      else bad.push(`schema ${i}: ${c.finish_reason} ${why || ''} ${JSON.stringify(c.message.content.slice(0, 200))}`);
    });
    check(`format: json_schema replies validate (${valid} of ${schemas.length}; ${refused} refused as run refuses them)`,
      bad.length === 0 && valid >= schemas.length - 2, bad.join('\n    '));

    // the same request alone gives the same reply (no matcher shared between slots)
    const alone = await client.chat.completions.create(withSchema(9));
    check('format: a constrained reply alone equals the one in the crowd', !results[9].e
      && alone.choices[0].message.content === results[9].r.choices[0].message.content,
      JSON.stringify(alone.choices[0].message.content));

    // a text completion under a schema: what `smallmind run --json-schema` prints
    const prompt = 'In the beginning';
    const expect = execFileSync(SM, ['run', '-m', MODEL, '-p', prompt, '-n', '150', '--temp', '0', '--no-display-prompt',
      '--json-schema', JSON.stringify(schemas[0])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .replace(/\n$/, '');
    const tc = await client.completions.create({ model: 'x', prompt, max_tokens: 150, temperature: 0,
      response_format: { type: 'json_schema', json_schema: { name: 'p', schema: schemas[0] } } });
    check('format: a constrained completion is what smallmind run --json-schema prints',
      tc.choices[0].text === expect && tc.choices[0].finish_reason === 'stop' && !validate(0, expect),
      `server ${JSON.stringify(tc.choices[0].text)} run ${JSON.stringify(expect)}`);

    // streamed and sampled
    const streamed = [];
    for (const i of [0, 9, 11, 17, 18]) {
      for (const seed of [1, 2]) {
        const s = await client.chat.completions.create(withSchema(i, { stream: true, temperature: 1, seed }));
        let text = '', fin = null;
        for await (const ch of s) {
          const d = ch.choices[0] && ch.choices[0].delta;
          if (d && d.content) text += d.content;
          if (ch.choices[0] && ch.choices[0].finish_reason) fin = ch.choices[0].finish_reason;
        }
        const why = validate(i, text);
        if (fin !== 'stop' || why) streamed.push(`schema ${i} seed ${seed}: ${fin} ${why || ''} ${JSON.stringify(text)}`);
      }
    }
    check('format: streamed sampled json_schema replies validate', streamed.length === 0, streamed.join('\n    '));

    // json_object: any object; a small model may never close a string, so
    // only the replies that end are parsed, and some must end
    let ended = 0;
    const objs = [];
    for (let seed = 1; seed <= 8; seed++) {
      const r = await client.completions.create({ model: 'x', prompt: '{"name": "Adam", "age": 930}\n', max_tokens: 150,
        temperature: 1.5, seed, response_format: { type: 'json_object' } });
      const c = r.choices[0];
      if (!/^\s*\{/.test(c.text)) { objs.push(`seed ${seed}: does not begin an object: ${JSON.stringify(c.text)}`); continue; }
      if (c.finish_reason !== 'stop') continue;
      ended++;
      let doc;
      try { doc = JSON.parse(c.text); } catch (e) { doc = e; }
      if (!(doc && typeof doc === 'object' && !Array.isArray(doc) && !(doc instanceof Error)))
        objs.push(`seed ${seed}: not a JSON object: ${JSON.stringify(c.text)}`);
    }
    check(`format: json_object replies are JSON objects (${ended} of 8 ended)`, objs.length === 0 && ended > 0,
      objs.join('\n    '));

    // bad requests: 400 naming response_format, in OpenAI's error shape
    const refuse = async (name, rf, word) => {
      try {
        await client.chat.completions.create({ model: 'x', messages, max_tokens: 8, response_format: rf });
        check(`format: ${name} is refused`, false, 'it was accepted');
      } catch (e) {
        check(`format: ${name} is refused with 400`, e.status === 400 && e.param === 'response_format'
          && e.type === 'invalid_request_error' && e.message.includes(word), `${e.status} ${e.param} ${e.message}`);
      }
    };
    await refuse('a schema with "not"', { type: 'json_schema', json_schema: { name: 'n',
      schema: { type: 'object', properties: { a: { not: { type: 'string' } } } } } }, "'not'");
    await refuse('a $ref to nowhere', { type: 'json_schema', json_schema: { name: 'r', schema: { $ref: '#/$defs/none' } } },
      'none');
    await refuse('a schema that is a number', { type: 'json_schema', json_schema: { name: 'x', schema: 5 } }, 'schema');
    await refuse('an unknown type', { type: 'yaml' }, 'yaml');
    await refuse('json_schema without an object', { type: 'json_schema' }, 'json_schema');
    const h = await healthMs(srv.port);
    const after = await client.chat.completions.create(withSchema(1));
    check('format: the server serves on after bad schemas', h < 100 && !validate(1, after.choices[0].message.content),
      `health ${h} ms, ${JSON.stringify(after.choices[0].message.content)}`);
  } catch (e) {
    check('format: runs to the end', false, String(e.stack || e));
  } finally {
    await srv.stop();
  }
}
