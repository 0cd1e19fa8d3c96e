#!/usr/bin/env python3
"""gguf_patch.py - makes damaged or unusual GGUF files for the hardening tests.

usage: gguf_patch.py IN OUT OP [ARGS] [OP [ARGS] ...]

  kv KEY VALUE          set an integer metadata value in place (the stored type is kept;
                        VALUE may be negative for a two's-complement pattern, e.g. -5 as u64)
  fill TENSOR VALUE     every element of an F32 tensor = VALUE (nan, inf, -1, 1e30 ...)
  scale TENSOR FACTOR   every element of an F32 tensor times FACTOR
  overlap A B           tensor A's data offset = tensor B's (their bytes then overlap)
  realign N [SKEW]      rewrite the file with general.alignment = N and the tensors packed at
                        multiples of N, the first one SKEW bytes (default 1) into the data section
  token ID TEXT         rewrite the file with tokenizer.ggml.tokens[ID] = TEXT

A reader of its own, written from the GGUF specification (ggml's docs/gguf.md): little-endian,
magic "GGUF", u32 version, u64 tensor count, u64 metadata count, metadata (string key, u32 type,
value), tensor infos (string name, u32 n_dims, u64 dims, u32 type, u64 offset), padding to
general.alignment (default 32), tensor data. It shares no code with SmallMind's reader.
"""
import math
import struct
import sys

SCALAR = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: 'B', 10: 'Q', 11: 'q', 12: 'd'}
STRING, ARRAY = 8, 9
# bytes per block and elements per block of the ggml types these tests meet
TYPE_SIZE = {0: (4, 1), 1: (2, 1), 2: (18, 32), 8: (34, 32), 12: (144, 256), 14: (210, 256)}


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from('<' + fmt, self.d, self.p)
        self.p += struct.calcsize('<' + fmt)
        return v[0]

    def string(self):
        n = self.take('Q')
        s = self.d[self.p:self.p + n]
        self.p += n
        return s.decode('utf-8', 'replace')

    def value(self, t):
        if t in SCALAR:
            return self.take(SCALAR[t])
        if t == STRING:
            return self.string()
        if t == ARRAY:
            et, n = self.take('I'), self.take('Q')
            return [self.value(et) for _ in range(n)]
        raise ValueError('unknown metadata type %d' % t)


def parse(data):
    r = Reader(data)
    assert data[:4] == b'GGUF', 'not a GGUF file'
    r.p = 4
    version, n_t, n_kv = r.take('I'), r.take('Q'), r.take('Q')
    kvs = []
    for _ in range(n_kv):
        start = r.p
        key = r.string()
        t = r.take('I')
        vpos = r.p
        val = r.value(t)
        kvs.append({'key': key, 'type': t, 'vpos': vpos, 'val': val, 'raw': data[start:r.p]})
    tensors = []
    for _ in range(n_t):
        start = r.p
        name = r.string()
        nd = r.take('I')
        ne = [r.take('Q') for _ in range(nd)]
        t = r.take('I')
        opos = r.p
        off = r.take('Q')
        n = 1
        for x in ne:
            n *= x
        bb, be = TYPE_SIZE.get(t, (0, 1))
        tensors.append({'name': name, 'ne': ne, 'type': t, 'opos': opos, 'off': off, 'n': n,
                        'bytes': n // be * bb, 'info_start': start})
    align = next((kv['val'] for kv in kvs if kv['key'] == 'general.alignment'), 32)
    data_off = (r.p + align - 1) // align * align
    return {'version': version, 'kvs': kvs, 'tensors': tensors, 'align': align, 'data_off': data_off}


def find_tensor(g, name):
    for t in g['tensors']:
        if t['name'] == name:
            return t
    sys.exit('gguf_patch: no tensor %s' % name)


def f32_edit(data, g, name, fn):
    t = find_tensor(g, name)
    assert t['type'] == 0, '%s is not F32' % name
    base = g['data_off'] + t['off']
    vals = struct.unpack_from('<%df' % t['n'], data, base)
    struct.pack_into('<%df' % t['n'], data, base, *[fn(v) for v in vals])


def pack_str(s):
    b = s.encode()
    return struct.pack('<Q', len(b)) + b


def realign(data, g, align, skew, kv_raw=None):
    head = bytearray(b'GGUF' + struct.pack('<IQ', g['version'], len(g['tensors'])))
    if kv_raw is None:
        kv_raw = [kv['raw'] for kv in g['kvs'] if kv['key'] != 'general.alignment']
        key = b'general.alignment'
        kv_raw.append(struct.pack('<Q', len(key)) + key + struct.pack('<II', 4, align))
    head += struct.pack('<Q', len(kv_raw)) + b''.join(kv_raw)
    offsets, off = [], skew
    for t in g['tensors']:
        off = (off + align - 1) // align * align
        offsets.append(off)
        off += t['bytes']
    for t, o in zip(g['tensors'], offsets):
        name = t['name'].encode()
        head += struct.pack('<Q', len(name)) + name + struct.pack('<I', len(t['ne']))
        head += b''.join(struct.pack('<Q', x) for x in t['ne']) + struct.pack('<IQ', t['type'], o)
    head += b'\0' * ((-len(head)) % align)
    body = bytearray(off)
    for t, o in zip(g['tensors'], offsets):
        src = g['data_off'] + t['off']
        body[o:o + t['bytes']] = data[src:src + t['bytes']]
    return bytearray(head + body)


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    data = bytearray(open(argv[1], 'rb').read())
    ops = argv[3:]
    i = 0
    while i < len(ops):
        g = parse(bytes(data))
        op = ops[i]
        if op == 'kv':
            key, value = ops[i + 1], int(ops[i + 2])
            kv = next((k for k in g['kvs'] if k['key'] == key), None)
            if kv is None or kv['type'] not in SCALAR or kv['type'] == 6 or kv['type'] == 12:
                sys.exit('gguf_patch: no integer key %s' % key)
            size = struct.calcsize('<' + SCALAR[kv['type']])
            struct.pack_into('<' + SCALAR[kv['type']].upper() if kv['type'] != 7 else '<B', data, kv['vpos'],
                             value % (1 << (8 * size)))
            i += 3
        elif op == 'fill':
            v = float(ops[i + 2])
            f32_edit(data, g, ops[i + 1], lambda _: v)
            i += 3
        elif op == 'scale':
            k = float(ops[i + 2])
            f32_edit(data, g, ops[i + 1], lambda x: x * k if math.isfinite(x * k) else x)
            i += 3
        elif op == 'overlap':
            a, b = find_tensor(g, ops[i + 1]), find_tensor(g, ops[i + 2])
            struct.pack_into('<Q', data, a['opos'], b['off'])
            i += 3
        elif op == 'realign':
            align = int(ops[i + 1])
            skew = int(ops[i + 2]) if i + 2 < len(ops) and ops[i + 2].isdigit() else 1
            data = realign(bytes(data), g, align, skew)
            i += 3 if i + 2 < len(ops) and ops[i + 2].isdigit() else 2
        elif op == 'token':
            tid, text = int(ops[i + 1]), ops[i + 2]
            raws = []
            for kv in g['kvs']:
                if kv['key'] == 'tokenizer.ggml.tokens':
                    toks = list(kv['val'])
                    toks[tid] = text
                    raws.append(pack_str(kv['key']) + struct.pack('<IIQ', ARRAY, STRING, len(toks)) +
                                b''.join(pack_str(t) for t in toks))
                else:
                    raws.append(kv['raw'])
            data = realign(bytes(data), g, g['align'], 0, raws)
            i += 3
        else:
            sys.exit('gguf_patch: unknown operation %s' % op)
    open(argv[2], 'wb').write(data)


if __name__ == '__main__':
    main(sys.argv)
