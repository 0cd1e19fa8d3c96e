// Records llama-server's answers to the requests of server_util/requests.jsonl
// (POST /tokenize, /detokenize, /apply-template on models/kjv-chat-3m.gguf)
// as server_util/responses.jsonl: the expected values of the serve test
// "llama-server's utility endpoints". llama.cpp is built outside this
// checkout; nothing of it is committed. The file committed was made with
// llama.cpp c392e509's llama-server.
//   node tests/refs/make_server_util_refs.mjs /path/to/llama-server
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const server = process.argv[2];
if (!server) { console.error("usage: node make_server_util_refs.mjs /path/to/llama-server"); process.exit(2); }
const port = 18000 + Math.floor(Math.random() * 1000);
const proc = spawn(server, ["-m", join(here, "../../models/kjv-chat-3m.gguf"), "--host", "127.0.0.1", "--port",
    String(port), "-c", "256", "-t", "1"], { stdio: "ignore" });
const base = `http://127.0.0.1:${port}`;
try {
    for (let i = 0; ; i++) {
        try { if ((await fetch(base + "/health")).status === 200) break; } catch { /* not yet */ }
        if (i > 600) throw new Error("llama-server did not start");
        await new Promise((r) => setTimeout(r, 100));
    }
    const out = [];
    for (const line of readFileSync(join(here, "server_util/requests.jsonl"), "utf8").split("\n")) {
        if (!line.trim()) continue;
        const req = JSON.parse(line);
        const res = await fetch(base + req.path, { method: "POST", headers: { "Content-Type": "application/json" },
            body: JSON.stringify(req.body) });
        out.push(JSON.stringify({ path: req.path, status: res.status, body: await res.json() }));
    }
    writeFileSync(join(here, "server_util/responses.jsonl"), out.join("\n") + "\n");
    console.log(`${out.length} answers recorded`);
} finally {
    proc.kill("SIGTERM");
}
