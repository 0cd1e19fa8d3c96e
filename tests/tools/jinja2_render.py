#!/usr/bin/env python3
"""jinja2_render.py - renders chat templates with Jinja2 itself, the reference
for smallmind's --jinja (tests/chat_test.sh).

The environment is the one Hugging Face transformers gives chat templates
(trim_blocks, lstrip_blocks, loop controls, a tojson that keeps non-ASCII,
raise_exception, a {% generation %} block rendered as its body), sandboxed
but with list methods allowed (minja and smallmind allow them). Around the
render, what llama.cpp's --jinja does (common/minja/chat-template.hpp and
common/chat.cpp at c392e509): a template that does not write a system
message it is given gets system messages merged into the next user
message, and a leading bos_token / trailing eos_token is removed.

usage: jinja2_render.py TEMPLATES.json MESSAGES.json BOS EOS OUTDIR
writes OUTDIR/NAME.want (the prompt) or OUTDIR/NAME.error for each template.
"""
import json
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import SandboxedEnvironment


class Generation(Extension):
    """{% generation %}...{% endgeneration %}: the body, unchanged."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def make_env():
    env = SandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                               extensions=["jinja2.ext.loopcontrols", Generation])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def render(tmpl, messages, add, bos, eos):
    return tmpl.render(messages=messages, add_generation_prompt=add, bos_token=bos, eos_token=eos)


def apply(tmpl, messages, bos, eos):
    needle = "<System Needle>"
    try:
        writes_system = needle in render(tmpl, [{"role": "system", "content": needle},
                                                {"role": "user", "content": "Hey"}], False, bos, eos)
    except Exception:
        writes_system = False
    if not writes_system:
        merged, pending = [], ""
        for m in messages:
            if m["role"] == "system":
                pending = pending + "\n" + m["content"] if pending else m["content"]
            elif m["role"] == "user" and pending:
                merged.append({"role": "user", "content": pending + ("\n" + m["content"] if m["content"] else "")})
                pending = ""
            else:
                if pending:
                    merged.append({"role": "user", "content": pending})
                    pending = ""
                merged.append(m)
        if pending:
            merged.append({"role": "user", "content": pending})
        messages = merged
    out = render(tmpl, messages, True, bos, eos)
    if bos and out.startswith(bos):
        out = out[len(bos):]
    if eos and out.endswith(eos):
        out = out[:-len(eos)]
    return out


def main():
    templates = json.load(open(sys.argv[1], encoding="utf-8"))["templates"]
    messages = json.load(open(sys.argv[2], encoding="utf-8"))
    bos, eos, outdir = sys.argv[3], sys.argv[4], sys.argv[5]
    env = make_env()
    for t in templates:
        name = t["name"]
        try:
            out = apply(env.from_string(t["template"]), messages, bos, eos)
            with open("%s/%s.want" % (outdir, name), "w", encoding="utf-8", newline="") as f:
                f.write(out)
        except Exception as e:
            with open("%s/%s.error" % (outdir, name), "w", encoding="utf-8") as f:
                f.write("%s: %s\n" % (type(e).__name__, e))
        with open("%s/%s.jinja" % (outdir, name), "w", encoding="utf-8", newline="") as f:
            f.write(t["template"])


if __name__ == "__main__":
    main()
