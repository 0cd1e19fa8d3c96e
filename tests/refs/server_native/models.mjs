// models.mjs - the models of requests.json's "infill" bodies, made the same
// way for the references (tests/refs/make_server_native_refs.mjs) and the
// test (tests/serve/native.mjs): DeepSeek Coder's vocabulary (from
// ../shared) on a random llama model written by `smallmind init`, and
// fim_model.py's Qwen2.5-Coder-style one; models/kjv-3m.gguf has no
// fill-in-the-middle tokens.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export function infillModels(dir, sharedDir, smallmind) {
  const deepseek = join(dir, 'deepseek-fim.gguf'), qwen = join(dir, 'qwen-fim.gguf');
  execFileSync(smallmind, ['init', deepseek, '--arch', 'llama', '--dim', '64', '--layers', '2', '--heads', '4', '--ffn', '128',
    '--ctx', '512', '--vocab-from', join(sharedDir, 'vocab/ggml-vocab-deepseek-coder.gguf'), '--seed', '7', '--init-std', '0.5'],
  { stdio: 'ignore' });
  execFileSync('/usr/bin/python3', ['tests/refs/server_native/fim_model.py', qwen]);
  return { deepseek, qwen, kjv: 'models/kjv-3m.gguf' };
}
