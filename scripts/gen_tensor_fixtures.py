#!/usr/bin/env python3
"""scripts/gen_tensor_fixtures.py -- numeric goldens for rlaif.tensor, from numpy.

Writes, deterministically (numpy RandomState seeds, fixed tensor order):
  tests/fixtures/tensor_ops.safetensors  inputs and expected outputs, all F32
  tests/fixtures/tensor_ops.lua          the manifest: one entry per case
  tests/fixtures/dtypes.safetensors      the same values stored as F16/BF16/F64/F32,
                                         each next to its expected float32 conversion

tests/spec/tensor_numeric_spec.lua reads these committed files through
rlaif.tensor.load, so the loader is checked against this independent writer and
the spec needs no numpy.  Not here: PyTorch (the only dependency is Debian's
python3-numpy), anything the spec computes itself.

Expected values are computed in float64 from the float32 inputs, then stored as
float32.  Input views (transpose, permute, narrow, select, slice, expand) are
described in the manifest and applied here with numpy's own view functions, so
the Lua side runs each op on the same non-contiguous view.

Manifest entry:
  { name = "add.bcast_3d_2d", op = "add", inputs = { "add.bcast_3d_2d.a", ... },
    args = { ..., n = k }, views = { [1] = { { "transpose", 1, 2 } } },
    noncontig = { 1 }, expected = { "...out" }, base_expected = "...", tol = 1e-6 }
  inputs: tensor names, numbers (scalars) or false (nil, e.g. layer_norm(x, nil, b));
  the op is called as rlaif.tensor[op](inputs..., args...), except the operator
  ops "+", "-", "*", "/", "^", "unm", and "matmul_out" (a:matmul(b, out)).
  tol: pass when |got - expected| <= tol * max(1, |expected|) for every element.
  base_expected: for in-place ops, the whole first input (before views) afterwards.

Run from the repository root:  python3 scripts/gen_tensor_fixtures.py
"""

import json
import math
import os
import struct
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT_DIR = os.path.join(ROOT, "tests", "fixtures")
GENERATOR = "scripts/gen_tensor_fixtures.py"

F32 = np.float32
F64 = np.float64


# ---- safetensors writer ----

DTYPE_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype, shape, raw little-endian bytes), in file order.
    Data regions are contiguous in that order (as the reference implementation
    requires); the header is padded with spaces to a multiple of 8 bytes."""
    header = {}
    chunks = []
    offset = 0
    for name, dtype, shape, raw in tensors:
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        assert len(raw) == n * DTYPE_SIZE[dtype], name
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt", "generator": GENERATOR}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)


def f32_bytes(a):
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


# ---- Lua manifest writer ----

def lua_value(v):
    if v is None:
        return "nil"
    if v is False or v is True:
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        assert math.isfinite(v)
        if v == int(v) and abs(v) < 1e15:
            return "%d.0" % int(v)
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # ASCII names only: JSON and Lua string syntax agree
    raise TypeError(v)


def lua_list(items, with_n=False):
    parts = [lua_value(x) if not isinstance(x, (list, tuple)) else lua_list(x) for x in items]
    if with_n:
        parts.append("n = %d" % len(items))
    return "{ " + ", ".join(parts) + " }" if parts else "{}"


def lua_case(c):
    """One case as a Lua table constructor: one line when it fits in 118 columns."""
    fields = ["name = %s" % lua_value(c["name"]), "op = %s" % lua_value(c["op"])]
    inputs = [False if x is None else x for x in c["inputs"]]
    fields.append("inputs = %s" % lua_list(inputs))
    if c["args"]:
        fields.append("args = %s" % lua_list(c["args"], with_n=True))
    if c["views"]:
        views = ", ".join("[%d] = %s" % (i, lua_list(v)) for i, v in sorted(c["views"].items()))
        fields.append("views = { %s }" % views)
    if c["noncontig"]:
        fields.append("noncontig = %s" % lua_list(c["noncontig"]))
    fields.append("expected = %s" % lua_list(c["expected"]))
    if c.get("base_expected"):
        fields.append("base_expected = %s" % lua_value(c["base_expected"]))
    fields.append("tol = %s" % lua_value(c["tol"]))
    line = "  { " + ", ".join(fields) + " },"
    if len(line) <= 118:
        return line
    return "  {\n" + "".join("    %s,\n" % f for f in fields) + "  },"


# ---- views, applied with numpy (1-based dims like the Lua API) ----

def axis(d, ndim):
    return d - 1 if d > 0 else ndim + d


def apply_view(x, v):
    kind, args = v[0], v[1:]
    if kind == "transpose":
        return np.swapaxes(x, axis(args[0], x.ndim), axis(args[1], x.ndim))
    if kind == "permute":
        return np.transpose(x, [axis(d, x.ndim) for d in args[0]])
    if kind == "narrow":  # dim, start (1-based), length
        ax, start, length = axis(args[0], x.ndim), args[1] - 1, args[2]
        idx = [slice(None)] * x.ndim
        idx[ax] = slice(start, start + length)
        return x[tuple(idx)]
    if kind == "slice":  # dim, first, last (inclusive, 1-based)
        ax = axis(args[0], x.ndim)
        idx = [slice(None)] * x.ndim
        idx[ax] = slice(args[1] - 1, args[2])
        return x[tuple(idx)]
    if kind == "select":
        ax = axis(args[0], x.ndim)
        idx = [slice(None)] * x.ndim
        idx[ax] = args[1] - 1
        return x[tuple(idx)]
    if kind == "expand":
        return np.broadcast_to(x, tuple(args[0]))
    raise ValueError(kind)


# ---- float64 references ----

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
ERF = np.vectorize(math.erf, otypes=[F64])


def gelu_erf(x):
    return 0.5 * x * (1.0 + ERF(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)))


def red_axis(x, dim):
    return None if dim is None else axis(dim, x.ndim)


def reduction(fn):
    def ref(x, dim=None, keepdim=False, correction=1):
        ax = red_axis(x, dim)
        return fn(x, ax, bool(keepdim) and ax is not None, correction)
    return ref


def _logsumexp(x, ax, keep, _c):
    m = np.max(x, axis=ax, keepdims=True)
    r = m + np.log(np.sum(np.exp(x - m), axis=ax, keepdims=True))
    if ax is None:
        return r.reshape(())
    return r if keep else np.squeeze(r, axis=ax)


def _arg(fn):
    def f(x, ax, keep, _c):
        if ax is None:
            return np.asarray(fn(x.reshape(-1)) + 1, dtype=F64)
        r = fn(x, axis=ax).astype(F64) + 1
        return np.expand_dims(r, ax) if keep else r
    return f


def _maxmin(fn, argfn):
    def f(x, dim=None, keepdim=False, _c=1):
        if dim is None:
            return fn(x)
        ax = axis(dim, x.ndim)
        v = fn(x, axis=ax, keepdims=bool(keepdim))
        i = argfn(x, axis=ax).astype(F64) + 1
        return (v, np.expand_dims(i, ax) if keepdim else i)
    return f


def softmax(x, dim=-1):
    ax = axis(dim, x.ndim)
    e = np.exp(x - np.max(x, axis=ax, keepdims=True))
    return e / np.sum(e, axis=ax, keepdims=True)


def log_softmax(x, dim=-1):
    ax = axis(dim, x.ndim)
    s = x - np.max(x, axis=ax, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=ax, keepdims=True))


def layer_norm(x, w=None, b=None, eps=1e-5):
    eps = float(F32(eps))
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y


def rms_norm(x, w=None, eps=1e-6):
    eps = float(F32(eps))
    y = x / np.sqrt((x ** 2).mean(axis=-1, keepdims=True) + eps)
    return y * w if w is not None else y


def clamp(x, lo=None, hi=None):
    if lo is not None:
        x = np.maximum(x, float(F32(lo)))
    if hi is not None:
        x = np.minimum(x, float(F32(hi)))
    return x


REF = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
    "maximum": np.maximum, "minimum": np.minimum,
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power,
    "add_": np.add, "sub_": np.subtract, "mul_": np.multiply, "div_": np.divide,
    "unm": np.negative, "neg": np.negative, "exp": np.exp, "exp_": np.exp, "log": np.log, "sqrt": np.sqrt,
    "rsqrt": lambda x: 1.0 / np.sqrt(x), "tanh": np.tanh, "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0.0), "relu_": lambda x: np.maximum(x, 0.0), "abs": np.abs,
    "square": np.square,
    "gelu": lambda x, mode=None: gelu_tanh(x) if mode == "tanh" else gelu_erf(x),
    "clamp": clamp,
    "contiguous": lambda x: x, "clone": lambda x: x,
    "sum": reduction(lambda x, ax, k, c: np.sum(x, axis=ax, keepdims=k)),
    "mean": reduction(lambda x, ax, k, c: np.mean(x, axis=ax, keepdims=k)),
    "var": reduction(lambda x, ax, k, c: np.var(x, axis=ax, keepdims=k, ddof=c)),
    "std": reduction(lambda x, ax, k, c: np.std(x, axis=ax, keepdims=k, ddof=c)),
    "logsumexp": reduction(_logsumexp),
    "argmax": reduction(_arg(np.argmax)), "argmin": reduction(_arg(np.argmin)),
    "max": _maxmin(np.max, np.argmax), "min": _maxmin(np.min, np.argmin),
    "softmax": softmax, "log_softmax": log_softmax,
    "layer_norm": layer_norm, "rms_norm": rms_norm,
    "matmul": np.matmul, "matmul_out": np.matmul,
}
INPLACE = {"add_", "sub_", "mul_", "div_", "exp_", "relu_"}


# ---- the fixture builder ----

class Fixture:
    def __init__(self):
        self.tensors = []   # (name, float32 array)
        self.names = set()
        self.cases = []

    def tensor(self, name, arr):
        assert name not in self.names, name
        self.names.add(name)
        self.tensors.append((name, np.asarray(arr, dtype=F32)))
        return name

    def case(self, name, op, inputs, args=(), views=None, tol=1e-6):
        """inputs: float32 arrays (stored as name.a, name.b, ...), existing tensor
        names (shared inputs), numbers (scalars) or None."""
        assert all(c["name"] != name for c in self.cases), name
        views = views or {}
        lua_inputs, vals, bases = [], [], {}
        for i, x in enumerate(inputs, start=1):
            if x is None:
                lua_inputs.append(None)
                vals.append(None)
            elif isinstance(x, (int, float)):
                lua_inputs.append(float(x))
                vals.append(float(F32(x)))  # the binding rounds scalars to float32
            else:
                if isinstance(x, str):
                    tname = x
                    arr = dict(self.tensors)[x]
                else:
                    tname = self.tensor("%s.%s" % (name, "abcdefgh"[i - 1]), x)
                    arr = np.asarray(x, dtype=F32)
                lua_inputs.append(tname)
                base = arr.astype(F64)
                v = base
                for view in views.get(i, []):
                    v = apply_view(v, view)
                bases[i] = base
                vals.append(v)
        noncontig = [i for i in views if not vals[i - 1].flags["C_CONTIGUOUS"]]
        ref = REF[op]
        base_expected = None
        if op in INPLACE:
            target = vals[0]
            target[...] = ref(*[v for v in vals if v is not None], *args)
            out = target.copy()
            base_expected = self.tensor(name + ".base_expected", bases[1])
        else:
            out = ref(*vals, *args)
        outs = out if isinstance(out, tuple) else (out,)
        expected = []
        for k, o in enumerate(outs):
            o = np.asarray(o, dtype=F64)
            assert np.all(np.isfinite(o)), name
            expected.append(self.tensor("%s.out%s" % (name, "" if k == 0 else k + 1), o))
        self.cases.append({
            "name": name, "op": op, "inputs": lua_inputs, "args": list(args), "views": views,
            "noncontig": noncontig, "expected": expected, "base_expected": base_expected, "tol": tol,
        })


def build_ops():
    fx = Fixture()
    rs = np.random.RandomState(20240601)

    def randn(*shape, scale=1.0, loc=0.0):
        return (loc + scale * rs.standard_normal(shape)).astype(F32)

    def unif(lo, hi, *shape):
        return rs.uniform(lo, hi, shape).astype(F32)

    # ---- binary ops with broadcasting ----
    for op in ("add", "sub", "mul", "div", "maximum", "minimum"):
        pos = op == "div"

        def operand(*shape):
            return unif(0.5, 2.0, *shape) if pos else randn(*shape)
        fx.case(op + ".bcast_314_21", op, [randn(3, 1, 4), operand(2, 1)])
        fx.case(op + ".bcast_4_234", op, [randn(4), operand(2, 3, 4)])
        fx.case(op + ".bcast_234_1", op, [randn(2, 3, 4), operand(1)])
        fx.case(op + ".bcast_1_23", op, [randn(1), operand(2, 3)])
        fx.case(op + ".same_34", op, [randn(3, 4), operand(3, 4)])
        fx.case(op + ".scalar_right", op, [randn(2, 3), 0.75])
        fx.case(op + ".scalar_left", op, [1.5 if pos else -1.25, operand(2, 3)])
        fx.case(op + ".transposed", op, [randn(4, 3), operand(3, 4)], views={1: [("transpose", 1, 2)]})
    fx.case("pow.tensor", "pow", [unif(0.25, 3.0, 3, 4), unif(-2.0, 2.5, 3, 4)], tol=2e-6)
    fx.case("pow.bcast", "pow", [unif(0.25, 3.0, 2, 3, 4), unif(-2.0, 2.5, 4)], tol=2e-6)
    fx.case("pow.scalar_exp", "pow", [unif(0.25, 3.0, 2, 5), 2.5], tol=2e-6)
    fx.case("pow.scalar_base", "pow", [2.0, unif(-3.0, 3.0, 2, 5)], tol=2e-6)
    fx.case("pow.permuted", "pow", [unif(0.25, 3.0, 2, 3, 4), unif(-2.0, 2.0, 3, 4, 2)],
            views={2: [("permute", [3, 1, 2])]}, tol=2e-6)
    # operators
    fx.case("op.add", "+", [randn(2, 3, 4), randn(3, 1)])
    fx.case("op.sub", "-", [randn(2, 3), randn(3)])
    fx.case("op.sub_scalar_left", "-", [2.5, randn(2, 3)])
    fx.case("op.mul", "*", [randn(4, 1), randn(1, 5)])
    fx.case("op.div", "/", [randn(2, 3), unif(0.5, 2.0, 2, 3)])
    fx.case("op.div_scalar_left", "/", [3.0, unif(0.5, 2.0, 2, 3)])
    fx.case("op.pow_scalar", "^", [unif(0.25, 3.0, 2, 3), 3.0], tol=2e-6)
    fx.case("op.unm", "unm", [randn(2, 3)])
    # expanded (stride 0) and narrowed operands
    fx.case("add.expanded", "add", [randn(3, 1), randn(3, 4)], views={1: [("expand", [3, 4])]})
    fx.case("mul.narrowed", "mul", [randn(3, 6), randn(3, 3)], views={1: [("narrow", 2, 2, 3)]})
    fx.case("sub.selected", "sub", [randn(4, 3, 5), randn(4, 5)], views={1: [("select", 2, 2)]})
    fx.case("div.sliced", "div", [randn(5, 4), unif(0.5, 2.0, 4, 5)],
            views={1: [("slice", 1, 2, 4)], 2: [("transpose", 1, 2), ("slice", 1, 2, 4)]})

    # ---- unary ops ----
    x = randn(3, 7, scale=2.0)
    fx.tensor("unary.x", x)
    pos = unif(0.05, 9.0, 3, 7)
    fx.tensor("unary.pos", pos)
    for op in ("exp", "tanh", "sigmoid", "relu", "abs", "square", "neg"):
        fx.case(op + ".x", op, ["unary.x"], tol=2e-6)
    for op in ("log", "sqrt", "rsqrt"):
        fx.case(op + ".pos", op, ["unary.pos"], tol=2e-6)
    fx.case("gelu.erf", "gelu", ["unary.x"], tol=2e-6)
    fx.case("gelu.erf_named", "gelu", ["unary.x"], args=["erf"], tol=2e-6)
    fx.case("gelu.tanh", "gelu", ["unary.x"], args=["tanh"], tol=2e-6)
    wide = randn(4, 8, scale=4.0)  # sigmoid/tanh/gelu tails
    fx.case("sigmoid.wide", "sigmoid", [wide], tol=2e-6)
    fx.case("gelu.erf_wide", "gelu", [wide], tol=2e-6)
    fx.case("gelu.tanh_wide", "gelu", [wide], args=["tanh"], tol=2e-6)
    fx.case("exp.transposed", "exp", [randn(4, 3)], views={1: [("transpose", 1, 2)]}, tol=2e-6)
    fx.case("sqrt.permuted", "sqrt", [unif(0.1, 4.0, 2, 3, 4)], views={1: [("permute", [3, 1, 2])]}, tol=2e-6)
    fx.case("tanh.narrowed", "tanh", [randn(4, 6)], views={1: [("narrow", 2, 3, 3)]}, tol=2e-6)
    fx.case("clamp.both", "clamp", ["unary.x"], args=[-0.5, 1.25])
    fx.case("clamp.lo", "clamp", ["unary.x"], args=[-0.5, None])
    fx.case("clamp.hi", "clamp", ["unary.x"], args=[None, 1.25])
    fx.case("clamp.transposed", "clamp", [randn(5, 3)], args=[-0.25, 0.5], views={1: [("transpose", 1, 2)]})
    fx.case("contiguous.permuted", "contiguous", [randn(2, 3, 4)], views={1: [("permute", [2, 3, 1])]})
    fx.case("clone.transposed", "clone", [randn(3, 4)], views={1: [("transpose", 1, 2)]})

    # ---- in place (base_expected checks that the view wrote through) ----
    fx.case("add_.bcast", "add_", [randn(2, 3, 4), randn(4)])
    fx.case("add_.scalar", "add_", [randn(2, 3), 1.5])
    fx.case("sub_.transposed", "sub_", [randn(4, 3), randn(3, 4)], views={1: [("transpose", 1, 2)]})
    fx.case("mul_.narrowed", "mul_", [randn(3, 6), randn(3, 1)], views={1: [("narrow", 2, 2, 3)]})
    fx.case("div_.scalar", "div_", [randn(2, 3), 4.0])
    fx.case("exp_.transposed", "exp_", [randn(3, 4)], views={1: [("transpose", 1, 2)]}, tol=2e-6)
    fx.case("relu_.narrowed", "relu_", [randn(4, 5)], views={1: [("narrow", 1, 2, 2)]})

    # ---- reductions of a 3-d tensor along every dim ----
    fx.tensor("red.x", randn(3, 4, 5))
    fx.tensor("red.big", randn(3, 4, 5, scale=3.0, loc=100.0))     # logsumexp stability
    fx.tensor("red.neg", randn(3, 4, 5, scale=3.0, loc=-100.0))    # exp underflows in float32
    fx.tensor("red.p", randn(5, 3, 4))                             # permuted to (3, 4, 5)
    for op in ("sum", "mean", "max", "min", "argmax", "argmin", "logsumexp", "var", "std"):
        tol = 0.0 if op in ("argmax", "argmin") else 1e-5
        fx.case(op + ".all", op, ["red.x"], tol=tol)
        for dim in (1, 2, 3, -1):
            fx.case("%s.dim%d" % (op, dim), op, ["red.x"], args=[dim], tol=tol)
            if dim > 0:
                fx.case("%s.dim%d_keep" % (op, dim), op, ["red.x"], args=[dim, True], tol=tol)
        perm = {1: [("permute", [2, 3, 1])]}
        fx.case(op + ".perm_all", op, ["red.p"], views=perm, tol=tol)
        for dim in (1, 2, 3):
            fx.case("%s.perm_dim%d" % (op, dim), op, ["red.p"], args=[dim], views=perm, tol=tol)
    fx.case("sum.dim-3_keep", "sum", ["red.x"], args=[-3, True], tol=1e-5)
    for op in ("var", "std"):
        fx.case(op + ".all_c1", op, ["red.x"], args=[None, None, 1], tol=1e-5)
        fx.case(op + ".all_c0", op, ["red.x"], args=[None, None, 0], tol=1e-5)
        for dim in (1, 2, 3):
            fx.case("%s.dim%d_c0" % (op, dim), op, ["red.x"], args=[dim, dim == 2, 0], tol=1e-5)
    for src in ("red.big", "red.neg"):
        tag = src.split(".")[1]
        fx.case("logsumexp.%s_all" % tag, "logsumexp", [src], tol=1e-6)
        for dim in (1, 2, 3):
            fx.case("logsumexp.%s_dim%d" % (tag, dim), "logsumexp", [src], args=[dim], tol=1e-6)
    fx.case("sum.narrowed", "sum", [randn(3, 8)], args=[2], views={1: [("narrow", 2, 3, 4)]}, tol=1e-5)
    fx.case("max.expanded", "max", [randn(3, 1)], args=[2], views={1: [("expand", [3, 4])]}, tol=0.0)

    # ---- softmax / log_softmax ----
    fx.tensor("sm.x", randn(3, 4, 5, scale=4.0))
    fx.tensor("sm.big", randn(2, 3, 6, scale=10.0, loc=80.0))
    for op in ("softmax", "log_softmax"):
        fx.case(op + ".default", op, ["sm.x"], tol=2e-6)
        for dim in (1, 2, 3, -1, -2):
            fx.case("%s.dim%d" % (op, dim), op, ["sm.x"], args=[dim], tol=2e-6)
        fx.case(op + ".big", op, ["sm.big"], args=[3], tol=2e-6)
        fx.case(op + ".big_dim1", op, ["sm.big"], args=[1], tol=2e-6)
        fx.case(op + ".transposed", op, [randn(5, 4, scale=3.0)], args=[-1],
                views={1: [("transpose", 1, 2)]}, tol=2e-6)
        fx.case(op + ".permuted_dim2", op, ["sm.x"], args=[2], views={1: [("permute", [3, 1, 2])]}, tol=2e-6)

    # ---- layer_norm / rms_norm over the last dim ----
    xn = randn(2, 3, 8, scale=2.0, loc=0.5)
    fx.tensor("norm.x", xn)
    fx.tensor("norm.w", randn(8, loc=1.0, scale=0.5))
    fx.tensor("norm.b", randn(8, scale=0.5))
    fx.case("layer_norm.plain", "layer_norm", ["norm.x"], tol=1e-5)
    fx.case("layer_norm.w", "layer_norm", ["norm.x", "norm.w"], tol=1e-5)
    fx.case("layer_norm.wb", "layer_norm", ["norm.x", "norm.w", "norm.b"], tol=1e-5)
    fx.case("layer_norm.b_only", "layer_norm", ["norm.x", None, "norm.b"], tol=1e-5)
    fx.case("layer_norm.eps", "layer_norm", [randn(4, 6, scale=0.05), None, None], args=[0.01], tol=1e-5)
    fx.case("layer_norm.transposed", "layer_norm", [randn(8, 3), "norm.w", "norm.b"],
            views={1: [("transpose", 1, 2)]}, tol=1e-5)
    fx.case("layer_norm.1d", "layer_norm", [randn(8, loc=3.0), "norm.w", "norm.b"], tol=1e-5)
    fx.case("rms_norm.plain", "rms_norm", ["norm.x"], tol=1e-5)
    fx.case("rms_norm.w", "rms_norm", ["norm.x", "norm.w"], tol=1e-5)
    fx.case("rms_norm.eps", "rms_norm", [randn(4, 8, scale=0.05), "norm.w"], args=[0.01], tol=1e-5)
    fx.case("rms_norm.permuted", "rms_norm", [randn(8, 2, 3), "norm.w"],
            views={1: [("permute", [2, 3, 1])]}, tol=1e-5)

    # ---- matmul ----
    def m(*shape):
        return unif(-1.0, 1.0, *shape)
    tol = 1e-5
    fx.case("matmul.2d", "matmul", [m(5, 7), m(7, 3)], tol=tol)
    fx.case("matmul.2d_odd", "matmul", [m(33, 65), m(65, 17)], tol=tol)
    fx.case("matmul.3d", "matmul", [m(2, 5, 7), m(2, 7, 3)], tol=tol)
    fx.case("matmul.3d_2d", "matmul", [m(3, 5, 7), m(7, 4)], tol=tol)
    fx.case("matmul.2d_3d", "matmul", [m(5, 7), m(3, 7, 4)], tol=tol)
    fx.case("matmul.3d_bcast1", "matmul", [m(1, 5, 7), m(3, 7, 4)], tol=tol)
    fx.case("matmul.4d", "matmul", [m(2, 3, 4, 5), m(2, 3, 5, 6)], tol=tol)
    fx.case("matmul.4d_bcast", "matmul", [m(2, 1, 4, 5), m(1, 3, 5, 6)], tol=tol)
    fx.case("matmul.4d_3d", "matmul", [m(2, 3, 4, 5), m(3, 5, 6)], tol=tol)
    fx.case("matmul.vv", "matmul", [m(7), m(7)], tol=tol)
    fx.case("matmul.vm", "matmul", [m(7), m(7, 3)], tol=tol)
    fx.case("matmul.mv", "matmul", [m(5, 7), m(7)], tol=tol)
    fx.case("matmul.3d_v", "matmul", [m(2, 5, 7), m(7)], tol=tol)
    fx.case("matmul.v_3d", "matmul", [m(7), m(2, 7, 3)], tol=tol)
    # transposed / strided views: a stored as (k, m), b as (n, k)
    fx.case("matmul.aT", "matmul", [m(7, 5), m(7, 3)], views={1: [("transpose", 1, 2)]}, tol=tol)
    fx.case("matmul.bT", "matmul", [m(5, 7), m(3, 7)], views={2: [("transpose", 1, 2)]}, tol=tol)
    fx.case("matmul.aT_bT", "matmul", [m(7, 5), m(3, 7)],
            views={1: [("transpose", 1, 2)], 2: [("transpose", 1, 2)]}, tol=tol)
    fx.case("matmul.aT_odd", "matmul", [m(40, 19), m(40, 13)], views={1: [("transpose", 1, 2)]}, tol=tol)
    fx.case("matmul.3d_aT", "matmul", [m(2, 7, 5), m(2, 7, 3)], views={1: [("transpose", 2, 3)]}, tol=tol)
    fx.case("matmul.3d_bT", "matmul", [m(2, 5, 7), m(2, 3, 7)], views={2: [("transpose", -1, -2)]}, tol=tol)
    fx.case("matmul.3d_batch_permuted", "matmul", [m(5, 2, 7), m(2, 7, 3)],
            views={1: [("permute", [2, 1, 3])]}, tol=tol)
    fx.case("matmul.4d_permuted", "matmul", [m(2, 4, 3, 5), m(2, 3, 6, 5)],
            views={1: [("permute", [1, 3, 2, 4])], 2: [("transpose", 3, 4)]}, tol=tol)
    fx.case("matmul.narrowed", "matmul", [m(5, 10), m(7, 3)], views={1: [("narrow", 2, 2, 7)]}, tol=tol)
    fx.case("matmul.narrowed_b", "matmul", [m(5, 7), m(7, 9)], views={2: [("narrow", 2, 4, 3)]}, tol=tol)
    fx.case("matmul.expanded_batch", "matmul", [m(1, 5, 7), m(3, 7, 4)],
            views={1: [("expand", [3, 5, 7])]}, tol=tol)
    fx.case("matmul.vT", "matmul", [m(7, 1), m(7, 3)], views={1: [("select", 2, 1)]}, tol=tol)
    fx.case("matmul_out.2d", "matmul_out", [m(5, 7), m(7, 3)], tol=tol)
    fx.case("matmul_out.3d_aT", "matmul_out", [m(2, 7, 5), m(2, 7, 3)],
            views={1: [("transpose", 2, 3)]}, tol=tol)
    fx.case("matmul_out.4d_bcast", "matmul_out", [m(2, 1, 4, 5), m(3, 5, 6)], tol=tol)
    return fx


# ---- dtype conversions ----

def bf16_bits(f32):
    """float32 -> bfloat16 bits, round to nearest even; NaN stays a quiet NaN."""
    u = np.asarray(f32, dtype=F32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(f32, dtype=F32))
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def build_dtypes():
    rs = np.random.RandomState(7)
    specials = [0.0, -0.0, 1.0, -1.0, 0.1, 1.0 / 3.0, -2.5, 3.14159265, 65504.0, -65504.0,
                65519.0, 65520.0, 1e5, 2.0 ** -14, 2.0 ** -24, -(2.0 ** -24), 3 * 2.0 ** -24,
                6.0e-8, 1e-5, 2.0 ** -25, 1e-9, 1e30, -1e-30, float("inf"), float("-inf"), float("nan")]
    values = np.concatenate([np.array(specials, dtype=F64), rs.standard_normal(22) * 10.0])
    v32 = values.astype(F32)
    out = []

    def add(name, dtype, raw, expected32, shape):
        out.append((name, dtype, shape, raw))
        out.append((name + ".expected", "F32", shape, f32_bytes(expected32.reshape(shape))))

    shape = [len(values)]
    # F64: values that only float64 holds (0.1, 1/3, overflow to inf, underflow to 0, halfway cases)
    v64 = np.concatenate([values, [1e300, -1e300, 1e-300, 1.0 + 2.0 ** -24, 1.0 + 3 * 2.0 ** -24,
                                   1.0 + 2.0 ** -24 + 2.0 ** -50, 3.4028235677973366e38]])
    add("f64/values", "F64", np.asarray(v64, dtype="<f8").tobytes(), v64.astype(F32), [len(v64)])
    add("f32/values", "F32", f32_bytes(v32), v32, shape)
    # F16: numpy's float32 -> float16 (round to nearest even; overflow to inf; subnormals)
    h = v32.astype(np.float16)
    add("f16/values", "F16", np.asarray(h, dtype="<f2").tobytes(), h.astype(F32), shape)
    # every positive subnormal pattern, plus the smallest normals and NaN payloads
    bits = np.concatenate([np.arange(0, 0x400, dtype=np.uint16), np.arange(0x8000, 0x8010, dtype=np.uint16),
                           np.array([0x0400, 0x0401, 0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE00],
                                    dtype=np.uint16)])
    hb = bits.view(np.float16)
    add("f16/bits", "F16", np.asarray(bits, dtype="<u2").tobytes(), hb.astype(F32), [len(bits)])
    h2 = (rs.standard_normal((3, 4)) * 3).astype(np.float16)
    add("f16/matrix", "F16", np.asarray(h2, dtype="<f2").tobytes(), h2.astype(F32).reshape(-1), [3, 4])
    # BF16: the top 16 bits of float32 after rounding to nearest even
    halfway = np.array([0x3F808000, 0x3F818000, 0x3F80C000, 0x3F807FFF, 0xBF808000, 0x7F7FFFFF],
                       dtype=np.uint32).view(F32)
    vb = np.concatenate([v32, halfway])
    b = bf16_bits(vb)
    expected_b = (b.astype(np.uint32) << 16).view(F32)
    add("bf16/values", "BF16", np.asarray(b, dtype="<u2").tobytes(), expected_b, [len(vb)])
    # 0-d tensors
    add("f16/scalar", "F16", np.asarray([np.float16(-1.5)], dtype="<f2").tobytes(), np.array([-1.5], F32), [])
    add("bf16/scalar", "BF16", np.asarray(bf16_bits(np.array([2.75], F32)), "<u2").tobytes(),
        np.array([2.75], F32), [])
    # Order data by element size so every region is naturally aligned.
    out.sort(key=lambda e: -DTYPE_SIZE[e[1]])
    return out


def lua_manifest(fx):
    head = ("-- tests/fixtures/tensor_ops.lua -- GENERATED by %s; do not edit.\n"
            "-- One entry per numeric case; the tensors live in tensor_ops.safetensors.\n"
            "-- See the generator's docstring for the fields.\n"
            "-- luacheck: ignore\n"
            "return {\n" % GENERATOR)
    return head + "\n".join(lua_case(c) for c in fx.cases) + "\n}\n"


def main():
    np.seterr(over="ignore", under="ignore", invalid="ignore")  # the dtype table overflows on purpose
    os.makedirs(OUT_DIR, exist_ok=True)
    fx = build_ops()
    write_safetensors(os.path.join(OUT_DIR, "tensor_ops.safetensors"),
                      [(n, "F32", list(a.shape), f32_bytes(a)) for n, a in fx.tensors])
    with open(os.path.join(OUT_DIR, "tensor_ops.lua"), "w") as f:
        f.write(lua_manifest(fx))
    write_safetensors(os.path.join(OUT_DIR, "dtypes.safetensors"), build_dtypes())
    print("%d cases, %d tensors" % (len(fx.cases), len(fx.tensors)), file=sys.stderr)


if __name__ == "__main__":
    main()
