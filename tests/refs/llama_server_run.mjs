// llama_server_run.mjs - for the scripts that record llama-server's answers
// (make_server_*_refs.mjs): starts LLAMA_SERVER (built outside this checkout)
// with args on 127.0.0.1:port and waits until /health answers; exits the
// script when it does not start. stop() ends it.
import { spawn } from 'node:child_process';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function startLlamaServer(bin, args, port, what) {
  const srv = spawn(bin, [...args, '--host', '127.0.0.1', '--port', String(port)], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    await sleep(100);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).status === 200)
        return { base: `http://127.0.0.1:${port}`, stop: async () => { srv.kill(); await sleep(300); } };
    } catch { /* not yet */ }
  }
  console.error('llama-server did not start for', what);
  process.exit(1);
}
