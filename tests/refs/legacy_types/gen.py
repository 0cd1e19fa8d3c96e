"""gen.py - a helper of make_refs.sh: writes the formula tensor into a model,
and turns llama-quantize's output into the compact expected values that
tests/unit/test_types_legacy.c reads (llamacpp.txt).

  gen.py fill MODEL.gguf TENSOR            overwrite TENSOR with source()
  gen.py extract QUANT.gguf TENSOR OUT.bin  the tensor's raw bytes
  gen.py record OUT.txt TENSOR ROWS COLS TYPE BIN DEQ_GGML [TYPE BIN DEQ_GGML ...]

The source values are a formula the C test computes too (source() there),
so no float data is committed. Each type's line holds FNV-1a 64 hashes of
llama-quantize's bytes and of ggml's dequantization of them, per 16 rows and in
all, and the first SLICE blocks' bytes in hex with their dequantized hash.
Group hashes cover GROUP rows each, to say where a difference is.
gguf-py's own dequantizer is checked against ggml's on the way."""
import sys
import numpy as np

sys.path.insert(0, sys.argv.pop(1))     # llama.cpp's gguf-py
from gguf import GGUFReader, GGMLQuantizationType  # noqa: E402
from gguf.quants import dequantize  # noqa: E402

SLICE = 64     # blocks (BF16: elements) given in hex
GROUP = 16     # rows per group hash
M32 = np.uint64(0xFFFFFFFF)


def source(rows, cols):
    """Row kinds by r % 8 (see test_types_legacy.c): scaled uniform, x0.37,
    cubes or a zero row, constants, one spike, bf16 rounding ties, tiny
    values, non-negative values."""
    i = np.arange(rows * cols, dtype=np.uint64)
    u = (i * np.uint64(2654435761) + np.uint64(0x9E3779B9)) & M32
    u ^= u >> np.uint64(15)
    u = (u * np.uint64(0x2C1B3C6D)) & M32
    u ^= u >> np.uint64(12)
    v = ((u >> np.uint64(8)).astype(np.int64) - 8388608).astype(np.float32) / np.float32(8388608)
    r = (i // np.uint64(cols)).astype(np.int64)
    c = (i % np.uint64(cols)).astype(np.int64)
    kind = r % 8
    out = np.zeros(rows * cols, dtype=np.float32)
    k0 = kind == 0
    out[k0] = v[k0] * np.exp2(((r[k0] // 8) % 5 - 2).astype(np.float32)).astype(np.float32)
    k1 = kind == 1
    out[k1] = v[k1] * np.float32(0.37)
    k2 = (kind == 2) & (r % 16 != 2)
    out[k2] = v[k2] * v[k2] * v[k2]
    k3 = kind == 3
    out[k3] = np.where(r[k3] % 16 == 3, np.float32(0.25), np.float32(-1.5))
    k4 = kind == 4
    out[k4] = np.where(c[k4] == 7, np.float32(3.0), v[k4] * np.float32(0.01))
    k5 = kind == 5
    bits = (np.uint64(0x3E000000) | (u[k5] & np.uint64(0x007F0000)) | np.uint64(0x8000) | (u[k5] & np.uint64(0x80000000)))
    out[k5] = bits.astype(np.uint32).view(np.float32)
    k6 = kind == 6
    out[k6] = v[k6] * np.float32(2.0 ** -70)
    k7 = kind == 7
    out[k7] = (v[k7] + np.float32(1.0)) * np.float32(0.5)
    return out.reshape(rows, cols)


def fnv(data):
    h = 0xcbf29ce484222325
    for b in bytes(data):
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def tensor(reader, name):
    for t in reader.tensors:
        if t.name == name:
            return t
    raise SystemExit(f"no tensor {name}")


def main():
    cmd = sys.argv[1]
    if cmd == "fill":
        t = tensor(GGUFReader(sys.argv[2], "r+"), sys.argv[3])
        assert t.tensor_type == GGMLQuantizationType.F32
        cols, rows = int(t.shape[0]), int(t.shape[1])
        t.data[...] = source(rows, cols).reshape(t.data.shape)
    elif cmd == "extract":
        t = tensor(GGUFReader(sys.argv[2]), sys.argv[3])
        open(sys.argv[4], "wb").write(np.ascontiguousarray(t.data).tobytes())
        print(int(t.tensor_type))
    elif cmd == "record":
        out, name, rows, cols = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        lines = [f"# llama-quantize --pure output for {name} ({rows} x {cols}, source() values), dequantized by",
                 "# ggml's to_float; written by make_refs.sh. Per type: hashes of the bytes and of the floats,",
                 "# per 16 rows and in all, and the first blocks in hex. Do not edit.",
                 f"shape {rows} {cols} slice {SLICE} group {GROUP}"]
        args = sys.argv[6:]
        for k in range(0, len(args), 3):
            tname, binf, deqf = args[k:k + 3]
            raw = open(binf, "rb").read()
            deq = np.fromfile(deqf, dtype=np.float32)
            qtype = GGMLQuantizationType[tname]
            py = dequantize(np.frombuffer(raw, dtype=np.uint8).reshape(rows, -1), qtype).reshape(-1).astype(np.float32)
            if not np.array_equal(py.view(np.uint32), deq.view(np.uint32)):
                raise SystemExit(f"{tname}: gguf-py and ggml dequantize differently")
            rb = len(raw) // rows
            blk_bytes = rb * 32 // cols if tname != "BF16" else 2
            blk_elems = 32 if tname != "BF16" else 1
            sl = raw[:SLICE * blk_bytes]
            sl_deq = deq[:SLICE * blk_elems]
            lines.append(f"type {tname} bytes {fnv(raw)} floats {fnv(deq.tobytes())} slice {fnv(sl_deq.tobytes())}")
            g = GROUP * rb
            lines.append(f"groups {tname} " + " ".join(fnv(raw[k:k + g]) for k in range(0, len(raw), g)))
            lines.append(f"hex {tname} {sl.hex()}")
        open(out, "w").write("\n".join(lines) + "\n")


main()
