#!/usr/bin/env python3
"""scripts/fuzz_seeds.py -- write the small seed inputs of the fuzz harnesses
into tests/fuzz/seeds/<harness>/ (committed; rerun after changing a format),
and the hand-made inputs that crashed the code before issue 15's fixes into
tests/fuzz/regress/<harness>/ (fuzzer-found crashes are copied there as-is).

Every seed is a valid or nearly valid input of its harness, a few hundred bytes,
so libFuzzer starts from the formats' structure rather than from nothing. The
larger fixtures (tests/fixtures/) and ../shared/data samples are added as extra
corpus folders by scripts/fuzz.sh. Standard library only."""
import base64, gzip, io, json, os, struct, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz", "seeds")


def put(harness, name, data, root=None):
    d = os.path.join(root or ROOT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, meta=None):
    """tensors: [(name, dtype, shape, raw bytes)] -> file bytes"""
    header, off, body = {}, 0, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, dt, shape, raw in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        body += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + body


def f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def ramp(n, scale=0.01):
    return [((i * 7919) % 97 - 48) * scale for i in range(n)]


# ---- safetensors ----
put("safetensors", "dtypes", safetensors([
    ("a", "F32", [2, 3], f32(ramp(6))), ("b", "F16", [2], struct.pack("<2e", 1.5, -2.0)),
    ("c", "BF16", [1, 2], struct.pack("<2H", 0x3F80, 0xC000)), ("d", "F64", [1], struct.pack("<d", 3.25)),
    ("s", "F32", [], f32([7.0])), ("z", "F32", [0, 4], b"")], {"format": "pt"}))
put("safetensors", "empty", safetensors([]))
put("safetensors", "4d", safetensors([("w", "F32", [1, 2, 1, 2], f32(ramp(4)))]))


# ---- model: config.json NUL model.safetensors ----
def gpt2_tensors(V=8, C=4, L=1, P=4, F=16):
    t = [("transformer.wte.weight", [V, C]), ("transformer.wpe.weight", [P, C])]
    for i in range(L):
        p = "transformer.h.%d." % i
        t += [(p + "ln_1.weight", [C]), (p + "ln_1.bias", [C]), (p + "attn.c_attn.weight", [C, 3 * C]),
              (p + "attn.c_attn.bias", [3 * C]), (p + "attn.c_proj.weight", [C, C]), (p + "attn.c_proj.bias", [C]),
              (p + "ln_2.weight", [C]), (p + "ln_2.bias", [C]), (p + "mlp.c_fc.weight", [C, F]),
              (p + "mlp.c_fc.bias", [F]), (p + "mlp.c_proj.weight", [F, C]), (p + "mlp.c_proj.bias", [C])]
    t += [("transformer.ln_f.weight", [C]), ("transformer.ln_f.bias", [C])]
    return t


def llama_tensors(V=8, C=4, L=1, H=2, KV=1, F=8):
    hd = C // H
    t = [("model.embed_tokens.weight", [V, C])]
    for i in range(L):
        p = "model.layers.%d." % i
        t += [(p + "input_layernorm.weight", [C]), (p + "self_attn.q_proj.weight", [H * hd, C]),
              (p + "self_attn.k_proj.weight", [KV * hd, C]), (p + "self_attn.v_proj.weight", [KV * hd, C]),
              (p + "self_attn.o_proj.weight", [C, H * hd]), (p + "post_attention_layernorm.weight", [C]),
              (p + "mlp.gate_proj.weight", [F, C]), (p + "mlp.up_proj.weight", [F, C]),
              (p + "mlp.down_proj.weight", [C, F])]
    return t + [("model.norm.weight", [C])]


def model_file(shapes):
    out = []
    for name, shape in shapes:
        n = 1
        for d in shape:
            n *= d
        out.append((name, "F32", shape, f32(ramp(n))))
    return safetensors(out, {"format": "pt"})


gpt2_cfg = {"model_type": "gpt2", "vocab_size": 8, "n_embd": 4, "n_layer": 1, "n_head": 1, "n_positions": 4,
            "n_inner": None, "activation_function": "gelu_new", "tie_word_embeddings": True, "eos_token_id": 7}
put("model", "gpt2", json.dumps(gpt2_cfg).encode() + b"\0" + model_file(gpt2_tensors()))
llama_cfg = {"model_type": "llama", "vocab_size": 8, "hidden_size": 4, "intermediate_size": 8,
             "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
             "max_position_embeddings": 16, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
             "tie_word_embeddings": True, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": [2, 3],
             "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 8}}
put("model", "llama", json.dumps(llama_cfg).encode() + b"\0" + model_file(llama_tensors()))
qwen_cfg = dict(llama_cfg, model_type="qwen2", tie_word_embeddings=False)
del qwen_cfg["rope_scaling"]
qt = llama_tensors() + [("lm_head.weight", [8, 4])]
for i in range(1):
    p = "model.layers.%d.self_attn." % i
    qt += [(p + "q_proj.bias", [4]), (p + "k_proj.bias", [2]), (p + "v_proj.bias", [2])]
put("model", "qwen2_untied", json.dumps(qwen_cfg).encode() + b"\0" + model_file(qt))
put("model", "config_only", json.dumps(gpt2_cfg))

# ---- state: the harness's model (GPT-2, V=8, C=4, L=1, P=4) has 300 parameters ----
NP = 300


def state(moments, step, blob, version=1):
    h = struct.pack("<8i", 0x52534C54, version, 0, 1, 4, 8, 1 if moments else 0, 0)
    h += struct.pack("<3q", NP, step, len(blob))
    body = f32(ramp(NP)) + (f32(ramp(NP, 1e-3)) + f32([1e-4] * NP) if moments else b"")
    return h + body + blob


put("state", "plain", state(False, 0, b""))
put("state", "moments_blob", state(True, 12, b'{"epoch":1,"step":12}'))
put("state", "other_version", state(False, 0, b"", version=2))

# ---- tokenizers ----
byte_chars = [c for c in range(33, 127)] + [c for c in range(161, 173)] + [c for c in range(174, 256)]
alphabet = dict(zip(byte_chars, byte_chars))
n = 0
for b in range(256):
    if b not in alphabet:
        alphabet[b] = 256 + n
        n += 1
vocab = {chr(alphabet[b]): b for b in range(256)}
merges = ["h e", "l l", "he ll", "o \u0120", "\u0120 w"]
for m in merges:
    vocab[m.replace(" ", "")] = len(vocab)
tok = {"version": "1.0", "truncation": None, "padding": None,
       "added_tokens": [{"id": len(vocab), "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                         "rstrip": False, "normalized": False, "special": True}],
       "normalizer": None,
       "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
       "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
       "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
       "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                 "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                 "vocab": vocab, "merges": merges}}
put("tokenizer_json", "bytelevel", json.dumps(tok, ensure_ascii=False))
tok2 = dict(tok, normalizer={"type": "NFC"},
            pre_tokenizer={"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
                                                        "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
                 "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
            post_processor={"type": "TemplateProcessing",
                             "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                                        {"Sequence": {"id": "A", "type_id": 0}}],
                             "pair": [], "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>",
                                                                              "ids": [len(vocab)],
                                                                              "tokens": ["<|endoftext|>"]}}})
put("tokenizer_json", "llama3_style", json.dumps(tok2, ensure_ascii=False))
tik = b"".join(base64.b64encode(bytes([b])) + b" %d\n" % b for b in range(256))
for i, t in enumerate([b"he", b"ll", b"hell", b"o ", b" w", b"world"]):
    tik += base64.b64encode(t) + b" %d\n" % (256 + i)
put("tiktoken", "small", tik)
put("tiktoken", "gap", b"".join(base64.b64encode(bytes([b])) + b" %d\n" % (b * 2) for b in range(256)))

# ---- LLM answers: byte 0 even = whole body, odd = stream; byte 1 = error status ----
W, S = b"\x00A", b"\x01A"
chat = {"id": "c1", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
        "logprobs": {"content": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": [
            {"token": "Hi", "logprob": -0.5, "bytes": [72, 105]}, {"token": "Yo", "logprob": -9999.0, "bytes": None}]}]},
        "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 1}}
put("llm_openai-chat", "whole", W + json.dumps(chat).encode())
put("llm_openai-chat", "n2", W + json.dumps(dict(chat, choices=[dict(chat["choices"][0], index=1),
                                                                 dict(chat["choices"][0], index=0)])).encode())
put("llm_openai-chat", "stream", S + b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in [
    {"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
    {"choices": [{"index": 0, "delta": {"content": "A"}, "logprobs": {"content": [
        {"token": "A", "logprob": -0.1, "bytes": [65], "top_logprobs": [{"token": "B", "logprob": -2.3}]}]}}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
    {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}]) + b": ping\n\ndata: [DONE]\n\n")
put("llm_openai-chat", "error", W + b'{"error":{"message":"Rate limit","type":"requests","code":"rate_limit_exceeded"}}')
comp = {"id": "x", "choices": [{"index": 0, "text": " yes", "finish_reason": "length", "logprobs": {
    "tokens": [" yes", "bytes:\\xe2\\x80"], "token_logprobs": [None, -0.2],
    "top_logprobs": [None, {" no": -1.5, "bytes:\\xe2": -3.0}]}}]}
put("llm_openai-completions", "whole", W + json.dumps(comp).encode())
put("llm_openai-completions", "stream", S + b"data: " + json.dumps(comp).encode() + b"\n\ndata: [DONE]\n\n")
lc = {"content": "Hi", "stop": True, "stop_type": "eos", "tokens_evaluated": 3, "tokens_predicted": 1,
      "completion_probabilities": [{"id": 5, "token": "Hi", "logprob": -0.1, "bytes": [72, 105],
                                    "top_logprobs": [{"id": 5, "token": "Hi", "logprob": -0.1}]},
                                   {"content": "!", "probs": [{"tok_str": "!", "prob": 0.5}]}]}
put("llm_llamacpp", "whole", W + json.dumps(lc).encode())
put("llm_llamacpp", "stream", S + b"data: " + json.dumps(dict(lc, stop=False)).encode() + b"\n\ndata: "
    + json.dumps({"content": "", "stop": True, "timings": {"prompt_n": 3, "predicted_n": 1}}).encode()
    + b"\n\nerror: {\"code\":500,\"message\":\"x\"}\n\n")
ol = {"model": "m", "response": "Hi", "done": True, "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 1,
      "logprobs": [{"token": "Hi", "logprob": -0.2, "bytes": [72, 105], "top_logprobs": []}]}
put("llm_ollama", "whole", W + json.dumps(ol).encode())
put("llm_ollama", "stream", S + json.dumps(dict(ol, done=False)).encode() + b"\r\n" +
    json.dumps({"message": {"content": "!"}, "done": True}).encode() + b"\n{\"error\":\"boom\"}\n")
tgi = [{"generated_text": "Hi", "details": {"finish_reason": "eos_token", "generated_tokens": 1,
        "prefill": [{"id": 1, "text": "<s>", "logprob": None}],
        "tokens": [{"id": 5, "text": "Hi", "logprob": -0.3, "special": False}],
        "top_tokens": [[{"id": 5, "text": "Hi", "logprob": -0.3}]]}}]
put("llm_tgi", "whole", W + json.dumps(tgi).encode())
put("llm_tgi", "stream", S + b"data:" + json.dumps({"token": {"id": 5, "text": "Hi", "logprob": -0.3,
    "special": False}, "top_tokens": [{"id": 6, "text": "Yo", "logprob": -1}], "generated_text": None}).encode()
    + b"\n\ndata:" + json.dumps({"token": {"id": 2, "text": "</s>", "logprob": -0.1, "special": True},
                                 "generated_text": "Hi", "details": {"finish_reason": "length"}}).encode() + b"\n\n")
gem = {"candidates": [{"index": 0, "content": {"parts": [{"text": "Hi"}, {"text": "x", "thought": True}]},
       "finishReason": "STOP", "logprobsResult": {"chosenCandidates": [{"token": "Hi", "tokenId": 3}],
       "topCandidates": [{"candidates": [{"token": "Hi"}, {"token": "Yo", "logProbability": -1.2676506e30}]}]}}],
       "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1}, "modelVersion": "g",
       "responseId": "r"}
put("llm_gemini", "whole", W + json.dumps(gem).encode())
put("llm_gemini", "array", W + json.dumps([gem, {"usageMetadata": {"promptTokenCount": 2}}]).encode())
put("llm_gemini", "stream", S + b"data: " + json.dumps(gem).encode() + b"\n\n")
put("llm_gemini", "error", W + b'[{"error":{"code":429,"message":"quota PerDay","status":"RESOURCE_EXHAUSTED",'
    b'"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"36s"}]}}]')
an = {"id": "msg", "type": "message", "model": "c", "content": [{"type": "text", "text": "Hi"}],
      "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 1}}
put("llm_anthropic", "whole", W + json.dumps(an).encode())
put("llm_anthropic", "stream", S + b"".join(b"event: %s\ndata: %s\n\n" % (e.encode(), json.dumps(d).encode()) for e, d in [
    ("message_start", {"type": "message_start", "message": {"id": "m", "model": "c", "usage": {"input_tokens": 3}}}),
    ("content_block_delta", {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 1}}),
    ("message_stop", {"type": "message_stop"})]))
put("llm_anthropic", "error", W + b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')

# ---- SSE / NDJSON: byte 0 picks the chunk size ----
put("sse", "mixed", b"\x03\xef\xbb\xbfdata: a\r\ndata:b\r\n\r\n: comment\nevent: x\ndata\n\nid: 1\nretry: 5\r\r"
    b"error: {\"code\":1}\n\ndata: tail")
put("sse", "ndjson", b"\x01{\"a\":1}\r\n\n  {\"b\":2}\n{\"c\":3}")

# ---- gz: JSONL plain and gzipped ----
jsonl = b'{"chosen":"\\n\\nHuman: hi\\n\\nAssistant: yo","rejected":"x"}\n{"a":[1,2,{"b":null}]}\r\n\n{"t":"\xc3\xa9"}'
put("gz", "plain.jsonl", jsonl)
buf = io.BytesIO()
with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as g:
    g.write(jsonl)
put("gz", "records.jsonl.gz", buf.getvalue())
put("gz", "truncated.gz", buf.getvalue()[:-9])

# ---- json ----
put("json", "record", b'{"prompt":"a\\u00e9\\ud83d\\ude00","n":-1.5e-3,"ok":true,"none":null,"arr":[[],{}],"big":12345678901234567890}')
put("json", "nested", b"[" * 50 + b"1" + b"]" * 50)
# ---- gguf: a tiny llama with its byte-level tokenizer, every tensor type, edge layouts ----
GG_U32, GG_I32, GG_F32, GG_STR, GG_ARR = 4, 5, 6, 8, 9


def gg_str(x):
    b = x.encode() if isinstance(x, str) else x
    return struct.pack("<Q", len(b)) + b


def gg_kv(key, kind, val):
    if kind == "str":
        return gg_str(key) + struct.pack("<I", GG_STR) + gg_str(val)
    if kind == "u32":
        return gg_str(key) + struct.pack("<II", GG_U32, val)
    if kind == "f32":
        return gg_str(key) + struct.pack("<If", GG_F32, val)
    if kind == "strs":
        return gg_str(key) + struct.pack("<IIQ", GG_ARR, GG_STR, len(val)) + b"".join(gg_str(v) for v in val)
    if kind == "i32s":
        return gg_str(key) + struct.pack("<IIQ", GG_ARR, GG_I32, len(val)) + struct.pack("<%di" % len(val), *val)
    raise ValueError(kind)


def gguf(kvs, tensors, align=32):
    """kvs: [bytes of gg_kv]; tensors: [(name, ggml type, ne (ggml order), raw bytes)] -> file bytes"""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    data, offs = b"", []
    for _, _, _, raw in tensors:
        data += bytes(-len(data) % align)
        offs.append(len(data))
        data += raw
    for (name, typ, ne, _), off in zip(tensors, offs):
        out += gg_str(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne) + struct.pack("<IQ", typ, off)
    return out + bytes(-len(out) % align) + data


def byte_level():   # GPT-2's bytes_to_unicode alphabet, in byte order
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


toks = byte_level() + ["he", "\u0120t", "\u0120the", "<|endoftext|>"]
V, C, F = len(toks), 4, 8
tokenizer_kvs = [gg_kv("tokenizer.ggml.model", "str", "gpt2"), gg_kv("tokenizer.ggml.pre", "str", "gpt-2"),
                 gg_kv("tokenizer.ggml.tokens", "strs", toks),
                 gg_kv("tokenizer.ggml.token_type", "i32s", [1] * (V - 1) + [3]),
                 gg_kv("tokenizer.ggml.merges", "strs", ["h e", "\u0120 t", "\u0120t he"]),
                 gg_kv("tokenizer.ggml.eos_token_id", "u32", V - 1)]
llama_kvs = [gg_kv("general.architecture", "str", "llama"), gg_kv("llama.block_count", "u32", 1),
             gg_kv("llama.embedding_length", "u32", C), gg_kv("llama.feed_forward_length", "u32", F),
             gg_kv("llama.attention.head_count", "u32", 2), gg_kv("llama.attention.head_count_kv", "u32", 1),
             gg_kv("llama.context_length", "u32", 8), gg_kv("llama.attention.layer_norm_rms_epsilon", "f32", 1e-5),
             gg_kv("llama.rope.freq_base", "f32", 10000.0)]
llama_t = [("token_embd.weight", 0, [C, V], f32(ramp(C * V))), ("blk.0.attn_norm.weight", 0, [C], f32([1.0] * C)),
           ("blk.0.attn_q.weight", 0, [C, C], f32(ramp(C * C))), ("blk.0.attn_k.weight", 0, [C, 2], f32(ramp(2 * C))),
           ("blk.0.attn_v.weight", 0, [C, 2], f32(ramp(2 * C))), ("blk.0.attn_output.weight", 0, [C, C], f32(ramp(C * C))),
           ("blk.0.ffn_norm.weight", 0, [C], f32([1.0] * C)), ("blk.0.ffn_gate.weight", 0, [C, F], f32(ramp(C * F))),
           ("blk.0.ffn_up.weight", 0, [C, F], f32(ramp(C * F))), ("blk.0.ffn_down.weight", 0, [F, C], f32(ramp(C * F))),
           ("output_norm.weight", 0, [C], f32([1.0] * C))]
put("gguf", "llama-tiny", gguf(llama_kvs + tokenizer_kvs, llama_t))
put("gguf", "vocab-only", gguf(tokenizer_kvs, []))
q8 = struct.pack("<H", 0x2c00) + bytes(range(-16 & 255, 256)) + bytes(range(16))   # d = 1/16, int8 -16..15
put("gguf", "types", gguf([gg_kv("general.alignment", "u32", 64)], [
    ("f32", 0, [4], f32([1.0, -2.0, 0.5, 3.0])), ("f16", 1, [4], struct.pack("<4H", 0x3c00, 0xc000, 0x0001, 0x7c00)),
    ("bf16", 30, [2, 2], struct.pack("<4H", 0x3f80, 0xbf80, 0x0001, 0x7f80)), ("f64", 28, [2], struct.pack("<2d", 1.5, -1e300)),
    ("q8_0", 8, [32], q8), ("q4_k", 12, [256], bytes(144))], align=64))
put("gguf", "misaligned-offset", b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + gg_str("w") +
    struct.pack("<IQIQ", 1, 4, 0, 4) + bytes(-57 % 32) + bytes(4) + f32([1, 2, 3, 4]))   # offset 4, alignment 32
# ---- regressions: each crashed or misread before the fix named ----
REG = os.path.join(ROOT, "..", "regress")
wrap = ('{"w":{"dtype":"F32","shape":[512],"data_offsets":[18446744073709549568,18446744073709551616]}}').encode()
put("safetensors", "offsets-wrap-2pow64", struct.pack("<Q", len(wrap)) + wrap + bytes(2048), REG)   # read before the map
put("model", "untied-params-overflow", json.dumps({
    "model_type": "llama", "vocab_size": 16777216, "hidden_size": 1048576, "intermediate_size": 16777216,
    "num_hidden_layers": 16777216, "num_attention_heads": 8, "tie_word_embeddings": False}), REG)
put("model", "n_inner-int-overflow", json.dumps({"model_type": "gpt2", "n_embd": 2147483647, "n_head": 1}), REG)
put("model", "wte-offsets-wrap", json.dumps({"model_type": "gpt2", "vocab_size": 64, "n_embd": 8, "n_layer": 1,
    "n_head": 1, "n_positions": 4}).encode() + b"\0" + struct.pack("<Q", len(wrap)) +
    wrap.replace(b'"w"', b'"transformer.wte.weight"').replace(b'[512]', b'[64,8]') + bytes(2048), REG)
put("llm_openai-completions", "index-int-min", W + b'{"choices":[{"index":-2147483648,"text":"a"},'
    b'{"index":1,"text":"b"}]}', REG)
put("llm_gemini", "index-1e40", W + b'{"candidates":[{"index":1e40},{"index":0}]}', REG)
put("llm_openai-chat", "bytes-1e40", W + b'{"choices":[{"index":0,"logprobs":{"content":[{"token":"A",'
    b'"logprob":-1,"bytes":[1e40,-5,300]}]}}]}', REG)
put("llm_openai-chat", "stream-no-choices", S + b'data: {"choices":[]}\n\ndata: [DONE]\n\n', REG)
print("seeds written to", os.path.relpath(ROOT))
