"""Independent GGUF reader for the tests: metadata, tensor table, and every
weight type of issue 12 dequantized to float64 numpy arrays.

    meta, tensors = read_gguf(path)     # tensors: name -> Tensor(type, ne, raw bytes)
    w = dequantize(tensors[name])       # float64 array, shape reversed(ne) (row-major)

Written for SmallMind from the format descriptions, not from any other
program's code: the GGUF container is described in ggml's docs/gguf.md, the
block layouts are the structs of ggml's ggml-common.h and the meaning of each
bit is that of the dequantize_row_* functions of ggml-quants.c (llama.cpp
c392e509). The arithmetic is done in float64, so the result is the exact
value the block represents (ggml itself rounds d*scale to float32 first; the
difference is below 1e-7 relative, far under any quantization error).
"""
import struct

import numpy as np

# ggml type ids (ggml.h)
F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 = 0, 1, 2, 3, 6, 7, 8
Q2_K, Q3_K, Q4_K, Q5_K, Q6_K = 10, 11, 12, 13, 14
IQ4_NL, IQ4_XS, BF16 = 20, 23, 30

TYPE_NAMES = {F32: "F32", F16: "F16", BF16: "BF16", Q8_0: "Q8_0", Q4_0: "Q4_0", Q4_1: "Q4_1", Q5_0: "Q5_0",
              Q5_1: "Q5_1", Q2_K: "Q2_K", Q3_K: "Q3_K", Q4_K: "Q4_K", Q5_K: "Q5_K", Q6_K: "Q6_K",
              IQ4_NL: "IQ4_NL", IQ4_XS: "IQ4_XS"}
# (elements per block, bytes per block)
BLOCK = {F32: (1, 4), F16: (1, 2), BF16: (1, 2), Q8_0: (32, 34), Q4_0: (32, 18), Q4_1: (32, 20),
         Q5_0: (32, 22), Q5_1: (32, 24), Q2_K: (256, 84), Q3_K: (256, 110), Q4_K: (256, 144),
         Q5_K: (256, 176), Q6_K: (256, 210), IQ4_NL: (32, 18), IQ4_XS: (256, 136)}

# the 16 non-linear levels of IQ4_NL / IQ4_XS (a constant of the format)
IQ4_LEVELS = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], dtype=np.float64)

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Tensor:
    def __init__(self, name, ne, type_, data):
        self.name, self.ne, self.type, self.data = name, ne, type_, data

    @property
    def shape(self):
        return tuple(reversed(self.ne))


class _Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)[0]
        self.p += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = bytes(self.d[self.p:self.p + n])
        self.p += n
        return s.decode("utf-8", errors="replace")

    def value(self, t):
        if t in _SCALAR:
            return self.take(_SCALAR[t])
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("<I"), self.take("<Q")
            if et in _SCALAR and et != 7:
                fmt = _SCALAR[et]
                size = struct.calcsize(fmt)
                arr = list(struct.unpack_from("<%d%s" % (n, fmt[1]), self.d, self.p))
                self.p += n * size
                return arr
            return [self.value(et) for _ in range(n)]
        raise ValueError("bad GGUF value type %d" % t)


class Layout:
    """Where a GGUF file's parts are: version, the metadata (meta, and its
    bytes data[kv_start:kv_end]), the tensor infos (name, ne, type, offset)
    and the alignment and start (base) of the tensor data."""


def read_layout(path, data):
    if bytes(data[:4]) != b"GGUF":
        raise ValueError("%s: not a GGUF file" % path)
    r = _Reader(data)
    r.p = 4
    g = Layout()
    g.version = r.take("<I")
    if g.version not in (2, 3):
        raise ValueError("%s: GGUF version %d" % (path, g.version))
    n_t, g.n_kv = r.take("<Q"), r.take("<Q")
    g.kv_start, g.meta = r.p, {}
    for _ in range(g.n_kv):
        k = r.string()
        g.meta[k] = r.value(r.take("<I"))
    g.kv_end, g.infos = r.p, []
    for _ in range(n_t):
        name = r.string()
        nd = r.take("<I")
        ne = [r.take("<Q") for _ in range(nd)]
        g.infos.append((name, ne, r.take("<I"), r.take("<Q")))
    g.align = g.meta.get("general.alignment", 32)
    g.base = (r.p + g.align - 1) // g.align * g.align
    return g


def read_gguf(path):
    """Returns (metadata dict, {name: Tensor}) in file order."""
    data = memoryview(open(path, "rb").read())
    g = read_layout(path, data)
    meta, infos, base = g.meta, g.infos, g.base
    tensors = {}
    for name, ne, t, off in infos:
        if t not in BLOCK:
            raise ValueError("%s: tensor %s has ggml type %d, which this reader does not know" % (path, name, t))
        be, bb = BLOCK[t]
        n = int(np.prod(ne))
        if ne[0] % be:
            raise ValueError("%s: %s: row of %d is not a whole number of blocks" % (path, name, ne[0]))
        nbytes = n // be * bb
        tensors[name] = Tensor(name, ne, t, data[base + off:base + off + nbytes])
    return meta, tensors


def _f16(b):
    return b.copy().view(np.float16).astype(np.float64)


def _blocks(raw, bb):
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, bb)


def _nibbles(qs):
    """qs (nb, 16): the 32 4-bit values of a 32-element block, low nibbles first."""
    return np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(np.float64)


def _q8_0(b):
    d = _f16(b[:, 0:2])
    return d * b[:, 2:34].copy().view(np.int8).astype(np.float64)


def _q4_0(b):
    return _f16(b[:, 0:2]) * (_nibbles(b[:, 2:18]) - 8)


def _q4_1(b):
    return _f16(b[:, 0:2]) * _nibbles(b[:, 4:20]) + _f16(b[:, 2:4])


def _fifth_bits(qh):
    """qh (nb, 4) little-endian uint32: bit e is the high bit of element e."""
    bits = np.unpackbits(qh, axis=1, bitorder="little")   # (nb, 32), element order
    return bits.astype(np.float64) * 16


def _q5_0(b):
    return _f16(b[:, 0:2]) * (_nibbles(b[:, 6:22]) + _fifth_bits(b[:, 2:6]) - 16)


def _q5_1(b):
    return _f16(b[:, 0:2]) * (_nibbles(b[:, 8:24]) + _fifth_bits(b[:, 4:8])) + _f16(b[:, 2:4])


def _iq4_nl(b):
    q = np.concatenate([b[:, 2:18] & 0xF, b[:, 2:18] >> 4], axis=1)
    return _f16(b[:, 0:2]) * IQ4_LEVELS[q]


def _two_bit_planes(qs):
    """qs (nb, 64) of Q2_K/Q3_K: the 256 2-bit values in output order.
    Output index = 128*n + 32*j + 16*h + l takes bits 2j..2j+1 of qs[32n + 16h + l]."""
    nb = qs.shape[0]
    q = qs.reshape(nb, 2, 1, 2, 16)                        # n, (j), h, l
    shifts = (2 * np.arange(4)).reshape(1, 1, 4, 1, 1)
    return ((q >> shifts) & 3).reshape(nb, 256)


def _q2_k(b):
    nb = b.shape[0]
    sc = b[:, 0:16]
    q = _two_bit_planes(b[:, 16:80]).astype(np.float64)
    d, dmin = _f16(b[:, 80:82]), _f16(b[:, 82:84])
    scale = np.repeat(d * (sc & 0xF), 16, axis=1)           # one scale per 16 outputs
    mins = np.repeat(dmin * (sc >> 4), 16, axis=1)
    return (scale * q - mins).reshape(nb, 256)


def _q3_k_scales(s):
    """s (nb, 12): the 16 signed 6-bit scales of a Q3_K block."""
    i = np.arange(16)
    low = np.where(i < 8, s[:, i % 8] & 0xF, s[:, i % 8] >> 4)
    high = (s[:, 8 + i % 4] >> (2 * (i // 4))) & 3
    return (low | (high << 4)).astype(np.float64) - 32


def _q3_k(b):
    nb = b.shape[0]
    hmask, qs, sc, d = b[:, 0:32], b[:, 32:96], b[:, 96:108], _f16(b[:, 108:110])
    q = _two_bit_planes(qs).astype(np.float64)
    # high bit: bit (4n + j) of hmask[16h + l]; a clear bit subtracts 4
    hm = hmask.reshape(nb, 1, 1, 2, 16)
    bit = (4 * np.arange(2).reshape(1, 2, 1, 1, 1) + np.arange(4).reshape(1, 1, 4, 1, 1))
    high = ((hm >> bit) & 1).reshape(nb, 256)
    q = q - 4 * (1 - high)
    return np.repeat(d * _q3_k_scales(sc), 16, axis=1) * q


def _k4_scales(s):
    """s (nb, 12): the 8 (scale, min) 6-bit pairs of Q4_K/Q5_K."""
    j = np.arange(8)
    lo = j < 4
    sc = np.where(lo, s[:, j % 4] & 63, (s[:, (j + 4) % 12] & 0xF) | ((s[:, (j - 4) % 12] >> 6) << 4))
    mn = np.where(lo, s[:, (j + 4) % 12] & 63, (s[:, (j + 4) % 12] >> 4) | ((s[:, j % 12] >> 6) << 4))
    return sc.astype(np.float64), mn.astype(np.float64)


def _q4_k(b):
    nb = b.shape[0]
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    sc, mn = _k4_scales(b[:, 4:16])
    qs = b[:, 16:144].reshape(nb, 4, 1, 32)
    q = ((qs >> np.array([0, 4]).reshape(1, 1, 2, 1)) & 0xF).reshape(nb, 256).astype(np.float64)
    return np.repeat(d * sc, 32, axis=1) * q - np.repeat(dmin * mn, 32, axis=1)


def _q5_k(b):
    nb = b.shape[0]
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    sc, mn = _k4_scales(b[:, 4:16])
    qh = b[:, 16:48].reshape(nb, 1, 1, 32)
    qs = b[:, 48:176].reshape(nb, 4, 1, 32)
    sub = np.arange(8).reshape(1, 4, 2, 1)                 # sub-block 2j + half
    low = (qs >> np.array([0, 4]).reshape(1, 1, 2, 1)) & 0xF
    q = (low + 16 * ((qh >> sub) & 1)).reshape(nb, 256).astype(np.float64)
    return np.repeat(d * sc, 32, axis=1) * q - np.repeat(dmin * mn, 32, axis=1)


def _q6_k(b):
    nb = b.shape[0]
    ql = b[:, 0:128].reshape(nb, 2, 2, 32)                 # n, (ql half a), l
    qh = b[:, 128:192].reshape(nb, 2, 1, 32)
    sc = b[:, 192:208].copy().view(np.int8).astype(np.float64)
    d = _f16(b[:, 208:210])
    # output 128n + 32k + l, k = 0..3: nibble k//2 of ql[64n + 32(k%2) + l], bits 2k..2k+1 of qh[32n + l]
    k = np.arange(4)
    low = (ql[:, :, k % 2, :] >> (4 * (k // 2)).reshape(1, 1, 4, 1)) & 0xF
    high = (qh >> (2 * k).reshape(1, 1, 4, 1)) & 3
    q = (low | (high << 4)).reshape(nb, 256).astype(np.float64) - 32
    return np.repeat(d * sc, 16, axis=1) * q


def _iq4_xs(b):
    nb = b.shape[0]
    d = _f16(b[:, 0:2])
    sh = b[:, 2].astype(np.uint32) | (b[:, 3].astype(np.uint32) << 8)
    sl = b[:, 4:8]
    ib = np.arange(8)
    ls = ((sl[:, ib // 2] >> (4 * (ib % 2))) & 0xF) | (((sh[:, None] >> (2 * ib)) & 3) << 4)
    qs = b[:, 8:136].reshape(nb, 8, 16)
    q = np.concatenate([qs & 0xF, qs >> 4], axis=2).reshape(nb, 256)
    return np.repeat(d * (ls.astype(np.float64) - 32), 32, axis=1) * IQ4_LEVELS[q]


_DEQUANT = {Q8_0: _q8_0, Q4_0: _q4_0, Q4_1: _q4_1, Q5_0: _q5_0, Q5_1: _q5_1, IQ4_NL: _iq4_nl,
            Q2_K: _q2_k, Q3_K: _q3_k, Q4_K: _q4_k, Q5_K: _q5_k, Q6_K: _q6_k, IQ4_XS: _iq4_xs}


def dequantize_bytes(raw, type_, n):
    """The n values encoded in raw (whole blocks of type_), as float64."""
    if type_ == F32:
        return np.frombuffer(raw, dtype="<f4", count=n).astype(np.float64)
    if type_ == F16:
        return np.frombuffer(raw, dtype="<f2", count=n).astype(np.float64)
    if type_ == BF16:
        u = np.frombuffer(raw, dtype="<u2", count=n).astype(np.uint32) << 16
        return u.view(np.float32).astype(np.float64)
    be, bb = BLOCK[type_]
    return _DEQUANT[type_](_blocks(raw, bb)).reshape(-1)[:n]


def dequantize(t):
    """A Tensor's values as float64, shape reversed(ne) (numpy row-major)."""
    n = int(np.prod(t.ne))
    return dequantize_bytes(t.data, t.type, n).reshape(t.shape)
