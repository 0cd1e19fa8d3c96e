// schema_ajv.js - checks the JSON Schema converter with an independent
// validator: for every schema llama.cpp's tests convert (../shared/refs/
// llamacpp) and the extra schemas below, random documents of our grammar
// (tests/tools/schema_sample.c) must parse as JSON and validate with ajv
// (draft 2020-12, ajv-formats). Needs ajv and ajv-formats from npm:
//   npm install --prefix /tmp/ajv ajv ajv-formats
//   NODE_PATH=/tmp/ajv/node_modules node tests/schema_ajv.js build/schema_sample [docs per schema]
// Prints "schema_ajv: N passed, N failed, N skipped" (a schema passes when
// all its documents validate; skipped: ajv cannot compile it, or we refuse it).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const Ajv2020 = require('ajv/dist/2020');
const Ajv07 = require('ajv');
const addFormats = require('ajv-formats');

const sampler = process.argv[2];
const perSchema = parseInt(process.argv[3] || '200', 10);
const shared = process.env.SM_SHARED || path.join(__dirname, '..', '..', 'shared');

const extra = [
  { type: 'object', properties: { name: { type: 'string', minLength: 1, maxLength: 12 },
      age: { type: 'integer', minimum: 0, maximum: 150 } }, required: ['name', 'age'] },
  { type: 'array', items: { type: 'number', minimum: -2, exclusiveMaximum: 3 }, minItems: 1, maxItems: 4 },
  { type: 'number', exclusiveMinimum: -1, maximum: 0 },
  { type: 'number', minimum: 10 },
  { type: 'number', maximum: -7, exclusiveMinimum: -9 },
  { type: 'integer', exclusiveMinimum: -5.5, maximum: 1e3 },
  { type: 'string', pattern: '^a"b\\\\c$' },
  { type: 'string', pattern: 'abc' },
  { type: 'string', pattern: '^[^a-z]{2,3}\\d+$' },
  { type: 'string', pattern: '^(\\w+\\s?)+$' },
  { type: 'string', pattern: '^.\\.[\\u00e0-\\u00ff]?$' },
  { type: 'string', pattern: '^A|B|C$' },
  { type: 'string', pattern: '^(?:x|y)*z{2}$' },
  { type: 'string', format: 'date' },
  { type: 'string', format: 'date-time' },
  { type: 'string', format: 'time' },
  { type: 'string', format: 'uuid' },
  { enum: [{ a: [1, 'x'] }, 'caf\u00e9', 1.5, -0.25, null] },
  { const: { k: 'v\n"q"' } },
  { $defs: { node: { type: 'object', properties: { v: { type: 'integer' }, next: { anyOf: [{ $ref: '#/$defs/node' }, { type: 'null' }] } },
      required: ['v', 'next'], additionalProperties: false } }, $ref: '#/$defs/node' },
  { type: 'object', properties: { a: { type: 'string' }, ab: { type: 'boolean' }, 'caf\u00e9': { type: 'null' } },
      additionalProperties: { type: 'integer' } },
  { type: 'object', additionalProperties: { type: 'array', items: { type: 'string', maxLength: 2 } } },
  { prefixItems: [{ type: 'string' }, { type: 'integer' }], items: { type: 'boolean' }, minItems: 3, maxItems: 5 },
  { type: ['string', 'null', 'boolean'] },
  { anyOf: [{ type: 'string', format: 'date' }, { type: 'integer', minimum: 100, maximum: 120 }] },
  { allOf: [{ properties: { a: { type: 'integer' } } }, { properties: { b: { type: 'string' } } }] },
  { type: 'object', properties: { id: { type: 'string', format: 'uuid' }, tags: { type: 'array', items: { enum: ['x', 'y'] }, maxItems: 3 } },
      required: ['id'] },
  true,
  {},
];

function schemas() {
  const out = [];
  const gi = JSON.parse(fs.readFileSync(path.join(shared, 'refs/llamacpp/grammar-integration.json')));
  for (const c of gi.cases) if (c.kind === 'schema') out.push({ name: 'integration: ' + c.description, schema: c.schema });
  const js = JSON.parse(fs.readFileSync(path.join(shared, 'refs/llamacpp/json-schema-to-grammar.json')));
  for (const c of js.cases)
    if (c.expected_status === 'success') out.push({ name: 'conversion: ' + c.description, schema: c.schema });
  extra.forEach((s, i) => out.push({ name: 'extra ' + i, schema: s }));
  return out;
}

let passed = 0, failed = 0, skipped = 0, docs = 0;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'schema-ajv-'));
schemas().forEach((t, i) => {
  // Draft 2020-12 first; draft-07 for schemas of the older tuple form.
  let ajv, validate, why;
  for (const Ajv of [Ajv2020, Ajv07]) {
    try {
      ajv = new Ajv({ strict: false, allErrors: false });
      addFormats(ajv);
      validate = ajv.compile(typeof t.schema === 'object' ? JSON.parse(JSON.stringify(t.schema)) : t.schema);
      break;
    } catch (e) {
      why = e.message.split('\n')[0];
    }
  }
  if (!validate) {
    skipped++;
    console.log(`skip ${t.name}: ajv cannot compile it (${why})`);
    return;
  }
  const file = path.join(tmp, `s${i}.json`);
  fs.writeFileSync(file, JSON.stringify(t.schema));
  const out = execFileSync(sampler, [file, String(perSchema), String(i + 1)], { maxBuffer: 1 << 28 }).toString('utf8');
  if (out.startsWith('REFUSED')) {
    skipped++;
    console.log(`skip ${t.name}: ${out.trim()}`);
    return;
  }
  const bad = [];
  for (const d of out.split('\u0000').slice(0, -1)) {
    if (d === '!') continue;
    docs++;
    let v;
    try {
      if (d === 'DEAD') throw new Error('the walk reached a dead end');
      v = JSON.parse(d);
    } catch (e) {
      bad.push(`${JSON.stringify(d)}: ${e.message}`);
      continue;
    }
    if (!validate(v)) bad.push(`${JSON.stringify(d)}: ${ajv.errorsText(validate.errors)}`);
  }
  if (bad.length) {
    failed++;
    console.log(`FAIL ${t.name} ${JSON.stringify(t.schema)}: ${bad.length} invalid, e.g.\n  ${bad.slice(0, 3).join('\n  ')}`);
  } else {
    passed++;
  }
});
fs.rmSync(tmp, { recursive: true });
console.log(`(${docs} documents)`);
console.log(`schema_ajv: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
