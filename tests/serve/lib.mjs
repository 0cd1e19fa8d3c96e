// lib.mjs - what the `smallmind serve` tests share: starting and stopping
// servers on loopback ports, raw HTTP over a socket (for what well-behaved
// clients never send), Server-Sent Event parsing, and the ok/FAIL tally.
import { spawn } from 'node:child_process';
import net from 'node:net';

export const SM = process.env.SM || 'build/smallmind';
export const MODEL = process.env.MODEL || 'models/kjv-3m.gguf';

let passed = 0, failed = 0, skipped = 0;
export function check(name, cond, detail = '') {
  if (cond) { passed++; console.log(`ok   ${name}`); }
  else { failed++; console.log(`FAIL ${name}${detail ? '\n    ' + String(detail).slice(0, 600) : ''}`); }
  return cond;
}
export function skip(name, why) { skipped++; console.log(`skip ${name}: ${why}`); }
export function finish(suite) {
  console.log(`${suite}: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  return failed === 0;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starts `smallmind serve` on a free loopback port; resolves once it listens.
// One thread (THREADS): the tests check behaviour, not speed, and on a
// shared machine a spinning second thread only slows them.
export async function startServer(args = [], env = {}) {
  const proc = spawn(SM, ['serve', '-m', MODEL, '--port', '0', '-t', process.env.THREADS || '1', ...args],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  let exited = null;
  const exit = new Promise((resolve) => proc.on('exit', (code, sig) => { exited = { code, sig }; resolve(exited); }));
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the server did not start: ' + log)), 30000);
    proc.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    });
    exit.then((e) => { clearTimeout(t); reject(new Error(`the server exited (${e.code}): ${log}`)); });
  });
  const base = `http://127.0.0.1:${port}`;
  return {
    proc, port, base, exit,
    log: () => log,
    exited: () => exited,
    async ready(ms = 30000) {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        try { if ((await fetch(base + '/health')).status === 200) return true; } catch { /* not yet */ }
        await sleep(20);
      }
      return false;
    },
    async stop() {
      if (!exited) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 30000);
      const e = await exit;
      clearTimeout(t);
      return e;
    },
  };
}

// Sends bytes on a fresh connection and resolves with the raw response
// (status, headers, body as text) once the server closes the connection
// or the whole body has come; `writer` may write on its own (for slow or
// huge bodies) instead of `bytes`.
export function rawRequest(port, bytes, { timeout = 10000, writer = null } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    let done = false;
    const end = (err) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      sock.destroy();
      const buf = Buffer.concat(chunks);
      const text = buf.toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
      resolve({ status: m ? Number(m[1]) : 0, head: head >= 0 ? text.slice(0, head) : text,
        body: head >= 0 ? buf.subarray(head + 4).toString('utf8') : '', error: err ? String(err.code || err) : null });
    };
    const t = setTimeout(() => end(new Error('timeout')), timeout);
    sock.on('data', (d) => {
      chunks.push(d);
      // a complete Content-Length response is enough
      const text = Buffer.concat(chunks).toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      const cl = text.slice(0, head).match(/content-length: *(\d+)/i);
      if (head >= 0 && cl && Buffer.concat(chunks).length >= head + 4 + Number(cl[1])) end(null);
    });
    sock.on('end', () => end(null));
    sock.on('close', () => end(null));
    sock.on('error', (e) => { if (chunks.length) end(null); else end(e); });
    sock.on('connect', () => { if (writer) writer(sock); else sock.write(bytes); });
  });
}

export function post(path, body, headers = {}) {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  let h = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\nConnection: close\r\n`;
  for (const [k, v] of Object.entries(headers)) h += `${k}: ${v}\r\n`;
  return Buffer.concat([Buffer.from(h + '\r\n'), b]);
}

// The time /health takes on a fresh connection, in milliseconds (Infinity
// when it fails).
export async function healthMs(port) {
  const t0 = performance.now();
  const r = await rawRequest(port, 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', { timeout: 2000 });
  const ms = performance.now() - t0;
  return r.status === 200 ? ms : Infinity;
}

// Every "data: " payload of a Server-Sent Events body, and whether the body
// is well formed: events separated by blank lines, JSON chunks, [DONE] last.
export function parseSSE(body) {
  const events = [];
  let wellFormed = body.endsWith('\n\n');
  for (const block of body.split('\n\n')) {
    if (!block) continue;
    if (!block.startsWith('data: ')) { wellFormed = false; continue; }
    events.push(block.slice(6));
  }
  if (events.at(-1) !== '[DONE]') wellFormed = false;
  const chunks = [];
  for (const e of events.slice(0, -1)) {
    try { chunks.push(JSON.parse(e)); } catch { wellFormed = false; }
  }
  return { chunks, wellFormed, done: events.at(-1) === '[DONE]' };
}

// A streamed chat or text completion: the text, the finish reason, the
// usage chunk, and whether every chunk belongs to one response.
export function assemble(chunks) {
  let text = '', finish = null, usage = null, ids = new Set(), role = null;
  for (const c of chunks) {
    ids.add(c.id);
    if (c.usage) usage = c.usage;
    const ch = c.choices && c.choices[0];
    if (!ch) continue;
    if (ch.delta) {
      if (ch.delta.role) role = ch.delta.role;
      if (ch.delta.content) text += ch.delta.content;
    } else if (typeof ch.text === 'string') {
      text += ch.text;
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  return { text, finish, usage, oneId: ids.size === 1, role };
}

export async function metric(base, name) {
  const text = await (await fetch(base + '/metrics')).text();
  const m = text.match(new RegExp('^' + name + ' (\\S+)$', 'm'));
  return m ? Number(m[1]) : NaN;
}
