#!/usr/bin/python3
"""scripts/gen_gguf_fixtures.py -- tests/fixtures/gguf/ref.gguf, a GGUF v3 file
assembled here byte by byte with struct and numpy, independently of rlaif's
writer, for tests/c/test_gguf.c:
  * metadata of every value type (u8 .. f64, bool, string, arrays of i32,
    f32 and strings) and a non-default general.alignment of 64;
  * tensor "src" (F32 [3, 64]: normals, exact halves, ties, tiny and huge
    values) and its encodings as numpy computes them: "f16" (astype(float16),
    round to nearest even), "bf16" (round to nearest even on the bits), "q8_0"
    (gguf-py's Q8_0.quantize_blocks: d = amax/127, round half away from zero,
    d stored as f16) and "f64"; plus "q4_k" (a type rlaif does not read).
The C test reads them all back, and byte-compares rlaif's own F16, BF16 and
Q8_0 encoders with these. Run: /usr/bin/python3 scripts/gen_gguf_fixtures.py
"""
import struct

import numpy as np

ALIGN = 64
rng = np.random.default_rng(7)
src = rng.standard_normal((3, 64)).astype(np.float32)
src[0, :8] = [0.5, -0.5, 1.0, 65504.0, 70000.0, 1e-8, -3e-5, 6e-8]   # f16 edge cases
src[1, :4] = [2.5 / 127 * 3, 0.0, -0.0, 1.5]
src[2, 32:64] = 0.0                                                 # an all-zero Q8_0 block


def round_away(x):
    a = np.abs(x)
    f = np.floor(a)
    return np.sign(x) * (f + np.floor(2 * (a - f)))


def q8_0(x):
    blocks = x.reshape(-1, 32)
    d = np.abs(blocks).max(axis=1, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    qs = round_away(blocks * inv).astype(np.int8)
    return np.concatenate([d.astype(np.float16).view(np.uint8), qs.view(np.uint8)], axis=1).tobytes()


def bf16(x):
    b = x.view(np.uint32).astype(np.uint64)
    r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    return r.tobytes()


def s(v):
    v = v.encode()
    return struct.pack("<Q", len(v)) + v


with np.errstate(over="ignore"):
    f16 = src.astype(np.float16).tobytes()   # 70000 -> inf, as intended

kv = [
    ("general.architecture", 8, s("test")),
    ("general.alignment", 4, struct.pack("<I", ALIGN)),
    ("t.u8", 0, struct.pack("<B", 200)), ("t.i8", 1, struct.pack("<b", -100)),
    ("t.u16", 2, struct.pack("<H", 60000)), ("t.i16", 3, struct.pack("<h", -30000)),
    ("t.u32", 4, struct.pack("<I", 4000000000)), ("t.i32", 5, struct.pack("<i", -2000000000)),
    ("t.f32", 6, struct.pack("<f", 0.25)), ("t.bool", 7, struct.pack("<B", 1)),
    ("t.u64", 10, struct.pack("<Q", 2**40 + 3)), ("t.i64", 11, struct.pack("<q", -(2**40))),
    ("t.f64", 12, struct.pack("<d", 1e-300)),
    ("t.str", 8, s("h\u00e9llo")),
    ("t.arr_i32", 9, struct.pack("<IQ", 5, 3) + struct.pack("<3i", 1, -2, 3)),
    ("t.arr_f32", 9, struct.pack("<IQ", 6, 2) + struct.pack("<2f", 1.5, -2.0)),
    ("t.arr_str", 9, struct.pack("<IQ", 8, 3) + s("a") + s("") + s("\u00c4 b")),
]
tensors = [
    ("src", 0, src.tobytes()),
    ("f16", 1, f16),
    ("bf16", 30, bf16(src)),
    ("q8_0", 8, q8_0(src)),
    ("f64", 28, src.astype(np.float64).tobytes()),
    ("q4_k", 12, bytes(144)),      # one Q4_K block (256 values in 144 bytes)
]
shapes = {"q4_k": (1, 256)}

out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)))
for k, t, v in kv:
    out += s(k) + struct.pack("<I", t) + v
off = 0
for name, t, data in tensors:
    rows, cols = shapes.get(name, src.shape)
    out += s(name) + struct.pack("<I", 2) + struct.pack("<QQ", cols, rows) + struct.pack("<IQ", t, off)
    off += (len(data) + ALIGN - 1) // ALIGN * ALIGN
out += bytes((-len(out)) % ALIGN)
for name, t, data in tensors:
    out += data + bytes((-len(data)) % ALIGN)
with open("tests/fixtures/gguf/ref.gguf", "wb") as f:
    f.write(out)
print("tests/fixtures/gguf/ref.gguf", len(out), "bytes")
