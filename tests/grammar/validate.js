// validate.js - checks generated documents against their schemas with an
// independent validator (ajv, draft 2020-12, with ajv-formats).
//   node tests/grammar/validate.js SCHEMAS.json OUTDIR
// OUTDIR holds I_S.json (schema I, seed S). Prints one line per document
// that fails and a summary "N documents, N valid"; exits 1 unless all are.
'use strict';
const fs = require('fs');
const path = require('path');
const Ajv2020 = require('ajv/dist/2020');
const addFormats = require('ajv-formats');

const schemas = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const dir = process.argv[3];
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
const validators = schemas.map((s) => ajv.compile(s));
let n = 0, valid = 0;
for (const f of fs.readdirSync(dir).filter((x) => /^\d+_\d+\.json$/.test(x)).sort()) {
  const i = parseInt(f.split('_')[0], 10);
  const text = fs.readFileSync(path.join(dir, f), 'utf8');
  n++;
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    console.log(`FAIL ${f}: not JSON (${e.message}): ${JSON.stringify(text.slice(0, 200))}`);
    continue;
  }
  if (validators[i](doc)) valid++;
  else console.log(`FAIL ${f}: ${ajv.errorsText(validators[i].errors)}: ${JSON.stringify(text.slice(0, 200))}`);
}
console.log(`${n} documents, ${valid} valid`);
process.exit(n > 0 && valid === n ? 0 : 1);
