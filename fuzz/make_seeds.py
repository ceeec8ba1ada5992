#!/usr/bin/env python3
"""Writes the small hand-made fuzz seeds (each < 4 KB) into fuzz/seeds/<target>/.
The large real files (stories260K.bin, tok512.bin, stories260K.gguf, the data sets) are copied into
the corpus by scripts/fuzz.sh at run time from the shared folder; they are never committed."""
import json, os, struct, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")

def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < 4096, (target, name, len(data))
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# ---- a tiny Llama: dim 4, hidden 4, 1 layer, 2 heads (head size 2), 1 kv head, vocab 6, seq 2
dim, hidden, layers, heads, kv_heads, vocab, seq = 4, 4, 1, 2, 1, 6, 2
kv_dim = dim // heads * kv_heads
def floats(n, start=0.01):
    return [start * (1 + (i % 7)) * (-1) ** i for i in range(n)]
tensors = [("token_embedding", vocab * dim), ("rms_att", layers * dim), ("wq", layers * dim * dim),
           ("wk", layers * kv_dim * dim), ("wv", layers * kv_dim * dim), ("wo", layers * dim * dim),
           ("rms_ffn", layers * dim), ("w1", layers * hidden * dim), ("w2", layers * dim * hidden),
           ("w3", layers * hidden * dim), ("rms_final", dim)]
def llama2c(shared):
    out = struct.pack("<7i", dim, hidden, layers, heads, kv_heads, vocab if shared else -vocab, seq)
    for _, n in tensors:
        out += struct.pack("<%df" % n, *floats(n))
    half = dim // heads // 2
    out += struct.pack("<%df" % (2 * seq * half), *([1.0] * (seq * half) + [0.0] * (seq * half)))
    if not shared:
        out += struct.pack("<%df" % (vocab * dim), *floats(vocab * dim, 0.02))
    return out
put("llama2c", "tiny_shared.bin", llama2c(True))
put("llama2c", "tiny_classifier.bin", llama2c(False))

# ---- a tiny tokenizer.bin: <unk>, <s>, </s>, byte pieces, a few merges
pieces = ["<unk>", "\n<s>\n", "\n</s>\n", "<0x0A>", "<0xFF>", " ", "a", "b", "ab", " ab", "\u00e9", "caf"]
def tokenizer_bin(pieces):
    out = struct.pack("<i", max(len(p.encode()) for p in pieces))
    for i, p in enumerate(pieces):
        b = p.encode()
        out += struct.pack("<fi", -float(i), len(b)) + b
    return out
put("tokenizer", "tiny.bin", tokenizer_bin(pieces))

# ---- a tiny GGUF v3 of the same model with the tokenizer in its metadata
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b
def kv(key, typ, payload):
    return gstr(key) + struct.pack("<I", typ) + payload
U32, I32, F32, STR, ARR = 4, 5, 6, 8, 9
gguf_vocab = pieces[:vocab]
meta = [kv("general.architecture", STR, gstr("llama")),
        kv("llama.embedding_length", U32, struct.pack("<I", dim)),
        kv("llama.feed_forward_length", U32, struct.pack("<I", hidden)),
        kv("llama.block_count", U32, struct.pack("<I", layers)),
        kv("llama.attention.head_count", U32, struct.pack("<I", heads)),
        kv("llama.attention.head_count_kv", U32, struct.pack("<I", kv_heads)),
        kv("llama.context_length", U32, struct.pack("<I", seq)),
        kv("llama.rope.freq_base", F32, struct.pack("<f", 10000.0)),
        kv("tokenizer.ggml.model", STR, gstr("llama")),
        kv("tokenizer.ggml.tokens", ARR, struct.pack("<IQ", STR, vocab) + b"".join(gstr(p) for p in gguf_vocab)),
        kv("tokenizer.ggml.scores", ARR, struct.pack("<IQ", F32, vocab) + struct.pack("<%df" % vocab, *[-float(i) for i in range(vocab)])),
        kv("tokenizer.ggml.token_type", ARR, struct.pack("<IQ", I32, vocab) + struct.pack("<%di" % vocab, 2, 3, 3, 6, 6, 1))]
gt = [("token_embd.weight", [dim, vocab], 0)]
for l in range(layers):
    gt += [(f"blk.{l}.attn_norm.weight", [dim], 0), (f"blk.{l}.attn_q.weight", [dim, dim], 0),
           (f"blk.{l}.attn_k.weight", [dim, kv_dim], 1), (f"blk.{l}.attn_v.weight", [dim, kv_dim], 1),
           (f"blk.{l}.attn_output.weight", [dim, dim], 0), (f"blk.{l}.ffn_norm.weight", [dim], 0),
           (f"blk.{l}.ffn_gate.weight", [dim, hidden], 0), (f"blk.{l}.ffn_down.weight", [hidden, dim], 0),
           (f"blk.{l}.ffn_up.weight", [dim, hidden], 0)]
gt += [("output_norm.weight", [dim], 0)]
infos, data = b"", b""
for name, ne, typ in gt:
    n = 1
    for d in ne:
        n *= d
    while len(data) % 32:
        data += b"\0"
    infos += gstr(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne) + struct.pack("<IQ", typ, len(data))
    data += struct.pack("<%df" % n, *floats(n)) if typ == 0 else struct.pack("<%de" % n, *floats(n))
head = b"GGUF" + struct.pack("<IQQ", 3, len(gt), len(meta)) + b"".join(meta) + infos
head += b"\0" * ((-len(head)) % 32)
put("gguf", "tiny_llama.gguf", head + data)

# ---- safetensors: an adapter-shaped file with metadata, F32 / F16 / BF16
def safetensors(entries, metadata):
    h, blob = {"__metadata__": metadata}, b""
    for name, dtype, shape, raw in entries:
        h[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    hj = json.dumps(h).encode()
    hj += b" " * ((-len(hj)) % 8)
    return struct.pack("<Q", len(hj)) + hj + blob
pre = "base_model.model.model.layers.0.self_attn.q_proj."
put("safetensors", "adapter.safetensors", safetensors(
    [(pre + "lora_A.weight", "F32", [2, 4], struct.pack("<8f", *floats(8))),
     (pre + "lora_B.weight", "F16", [4, 2], struct.pack("<8e", *floats(8))),
     (pre + "hyplora_K", "BF16", [1], struct.pack("<H", 0x3F80)),
     ("scale", "F64", [], struct.pack("<d", 0.5))],
    {"format": "hyplora-adapter/1", "adapter": "{\"rank\": 2}"}))

# ---- data sets: two records of each format (one JSON Lines, the others JSON arrays)
put("data", "gsm8k.jsonl", "\n".join(json.dumps(r) for r in [
    {"question": "Janet has 16 eggs and eats 3. How many are left?", "answer": "16 - 3 = <<16-3=13>>13\n#### 13"},
    {"question": "A shop sells 1,200 pens.", "answer": "#### 1,200"}]) + "\n")
put("data", "mawps.json", json.dumps([
    {"id": 1, "original_text": "Tom had 5 apples and got 3 more . How many now ?", "equation": "X=(5.0+3.0)", "ans": 8.0},
    {"id": 2, "original_text": "Half of 9 ?", "equation": "X=9.0/2", "ans": "4.5"}], indent=1))
put("data", "llm_adapters.json", json.dumps([
    {"instruction": "Add 2 and 3.", "input": "", "output": "2 + 3 = 5. The answer is 5.", "answer": "5.0"},
    {"instruction": "Pick. Answer Choices: (A) 1 (B) 2", "input": "", "output": "The answer is (B).", "answer": "B"}], indent=1))
put("data", "svamp.json", json.dumps([
    {"ID": "chal-1", "Body": "Each pack costs 76 dollars.", "Question": "How much for 2?", "Equation": "( 76.0 * 2.0 )", "Answer": 152.0, "Type": "Multiplication"}]))
put("data", "aqua.jsonl", json.dumps(
    {"question": "What is 2+2?", "options": ["A)3", "B)4", "C)5", "D)6", "E)7"], "rationale": "2+2=4.", "correct": "B"}) + "\n")

# ---- configuration files (the `--config` JSON and a settings.json)
put("config", "config.json", json.dumps(
    {"adapter": "hyplora", "manifold": "lorentz", "rank": 4, "lr": 0.003, "targets": ["q", "v"], "builtin": True,
     "steps": 10, "learn_curvature": True, "curvature": 1.0, "out": "runs/x"}))
put("config", "settings_bad.json", json.dumps({"rank": 0, "lr": -1, "curvature": -1.0, "unknown-key": 1, "builtin": True}))
print("seeds written to", root)
