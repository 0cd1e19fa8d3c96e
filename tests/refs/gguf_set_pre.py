"""Writes a copy of a vocab-only GGUF whose tokenizer.ggml.pre names another
pre-tokenizer, or (value "-") whose key is renamed so that the file names
none. For tests/refs/make_pretok_refs.sh; tests/unit/test_tokenizer.c makes
the same copies in C.

    python3 gguf_set_pre.py IN.gguf OUT.gguf NAME|-
"""
import struct
import sys

KEY = b"tokenizer.ggml.pre"


def main():
    src, dst, name = sys.argv[1], sys.argv[2], sys.argv[3]
    data = open(src, "rb").read()
    head = struct.pack("<Q", len(KEY)) + KEY + struct.pack("<I", 8)  # the key, then type 8 (string)
    at = data.find(head)
    if at < 0 or data.find(head, at + 1) >= 0:
        sys.exit("%s: expected one string key %s" % (src, KEY.decode()))
    vat = at + len(head)
    (vlen,) = struct.unpack_from("<Q", data, vat)
    end = vat + 8 + vlen
    if name == "-":  # the same length, another key: no pre-tokenizer named
        out = data[:at] + struct.pack("<Q", len(KEY)) + b"tokenizer.ggml.prx" + data[at + 8 + len(KEY):]
    else:
        v = name.encode()
        out = data[:vat] + struct.pack("<Q", len(v)) + v + data[end:]
    open(dst, "wb").write(out)


main()
