#!/usr/bin/env python3
"""Tiny random-weight GPT-2 and Llama GGUFs and their transformers reference outputs.

The C++ tests build the same two GGUF files themselves (tests/support/tiny_models.{h,cpp}, with the
test GgufWriter), convert them with our converter and compare the forward pass with the JSON written
here. The weights therefore come from an integer formula that C++ and Python evaluate bit for bit.

Run::

    /work/refenv/bin/python tools/make_tiny_models.py --out-dir tests/data/reference [--keep-gguf DIR]

Writes tests/data/reference/tiny_gpt2.json and tiny_llama.json. The GGUF files go to a temporary
directory (or DIR with --keep-gguf) and are not committed. Needs gguf-py, torch, transformers and
accelerate (transformers will not load a GGUF without it).

Weight formula (keep in sync with tests/support/tiny_models.h)
----------------------------------------------------------------
For a tensor named ``name`` and flat index ``i`` in GGUF data order (ne[0] fastest), all in uint32
arithmetic (mod 2^32)::

    s = fnv1a32(name)                       # FNV-1a: h = 2166136261; per byte: h ^= b; h *= 16777619
    x = s * 2654435761 + i * 40503 + 12345
    x ^= x >> 16; x *= 0x7feb352d           # "lowbias32" finaliser, so neighbouring
    x ^= x >> 15; x *= 0x846ca68b           # indices are not correlated
    x ^= x >> 16
    v = (x >> 8) % 2001 - 1000              # integer in [-1000, 1000]
    n = base + v * step                     # integer, |n| < 2^24, exact in float32
    value = float32(n) / float32(1000000)   # one correctly rounded float32 division

with (base, step) chosen by the tensor's kind (first match wins):

    name ends with "_norm.weight"              base 1000000, step 100   (1 +- 0.1)
    name ends with ".bias"                     base 0,       step 50    (+- 0.05)
    token_embd.weight, position_embd.weight    base 0,       step 500   (+- 0.5)
    anything else (matrices, output.weight)    base 0,       step 250   (+- 0.25)

A tensor stored as F16 holds that float32 value rounded to half (round to nearest even); transformers
and our converter both see the rounded value.

Models
------
tiny GPT-2 (general.architecture gpt2): vocab 301, n_ctx 64, d 32, 2 layers, 4 heads, ffn 128,
layer_norm_epsilon 1e-5, tied output (no output.weight), position_embd stored as F16.
tiny Llama (general.architecture llama): vocab 301, context 64, d 32, 2 layers, 4 heads, 2 KV heads
(head dim 8), ffn 48, rope freq_base 10000, rms eps 1e-5, separate output.weight (untied),
token_embd stored as F16. attn_q / attn_k hold formula values in llama.cpp's permuted (GGUF)
layout; transformers un-permutes them on load, as our converter must.

Vocabulary (both): ids 0..255 are the 256 byte tokens in GPT-2's byte-to-unicode order (the order of
GPT-2's encoder.json: '!'..'~', then '¡'..'¬', then '®'..'ÿ', then the remapped bytes 0..32, 127..160,
173 as U+0100..U+0143), ids 256..299 are the results of MERGES below in order, id 300 is
"<|endoftext|>" (token type 3, control; bos = eos = 300). All other token types are 1 (normal).

JSON contents: formula parameters, config, metadata, the tensor list (name, ne, type, float64 sum and
first values of the stored data), and for each input sequence the full logits [T][vocab], the argmax
gap, a 10-token greedy continuation (EOS does not stop it) and, for sequence 1, the attention
probabilities of layer 0 head 0 [T][T]. The script also checks that the transformers GGUF load
matches a model built directly from the same weights (GPT2LMHeadModel / LlamaForCausalLM with our
own un-permute), so a transformers GGUF-loader quirk cannot leak into the reference unnoticed.
"""

import argparse
import importlib.metadata
import json
import os
import re
import sys
import tempfile

import gguf
import numpy as np
import torch
import transformers

MASK32 = 0xFFFFFFFF

MERGES = [
    "Ġ t", "Ġ a", "h e", "i n", "r e", "o n", "Ġt he", "e r", "Ġ s", "a t", "e n",
    "o r", "Ġ w", "Ġ o", "e s", "i s", "Ġ c", "a n", "i t", "Ġ b", "Ġ f", "Ġ p",
    "Ġ m", "Ġo f", "in g", "Ġ i", "a r", "Ġ d", "l e", "o u", "Ġ h", "e d", "Ġa n",
    "Ġan d", "s t", "Ġt o", "Ġ l", "a l", "Ġ in", "Ġ e", "r o", "Ġ is", "l l", "T he",
]  # fmt: skip
EOT = "<|endoftext|>"

SEQUENCES = [
    [1 + 4 * k for k in range(7)],  # 1, 5, 9, ..., 25
    [(17 * k + 3) % 300 for k in range(16)],
    [(37 * k + 11) % 301 for k in range(33)],  # includes id 300 (<|endoftext|>) and reaches position 32
]
ATTENTION_SEQUENCE = 1
NUM_GREEDY = 10


# ---------------------------------------------------------------------------------------------
# Formula


def fnv1a32(name):
    h = 2166136261
    for b in name.encode("utf-8"):
        h ^= b
        h = (h * 16777619) & MASK32
    return h


def kind_params(name):
    if name.endswith("_norm.weight"):
        return 1000000, 100
    if name.endswith(".bias"):
        return 0, 50
    if name in ("token_embd.weight", "position_embd.weight"):
        return 0, 500
    return 0, 250


def formula_values(name, count):
    """float32 array of `count` formula values for tensor `name` (GGUF data order)."""
    s = fnv1a32(name)
    i = np.arange(count, dtype=np.uint64)
    x = (np.uint64(s) * np.uint64(2654435761) + i * np.uint64(40503) + np.uint64(12345)) & np.uint64(MASK32)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & np.uint64(MASK32)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & np.uint64(MASK32)
    x ^= x >> np.uint64(16)
    v = ((x >> np.uint64(8)) % np.uint64(2001)).astype(np.int64) - 1000
    base, step = kind_params(name)
    n = base + v * step
    assert np.all(np.abs(n) < (1 << 24))
    return n.astype(np.float32) / np.float32(1000000)


def _scalar_formula(name, i):
    """Pure-Python version of one value, used to cross-check the vectorised one."""
    x = (fnv1a32(name) * 2654435761 + i * 40503 + 12345) & MASK32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK32
    x ^= x >> 15
    x = (x * 0x846CA68B) & MASK32
    x ^= x >> 16
    v = ((x >> 8) % 2001) - 1000
    base, step = kind_params(name)
    return np.float32(base + v * step) / np.float32(1000000)


# ---------------------------------------------------------------------------------------------
# Vocabulary


def byte_alphabet():
    """GPT-2 bytes_to_unicode() in encoder.json order: list of 256 one-character strings."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def vocabulary():
    tokens = byte_alphabet()
    for m in MERGES:
        left, right = m.split(" ")
        assert left in tokens and right in tokens, m
        merged = left + right
        assert merged not in tokens, m
        tokens.append(merged)
    tokens.append(EOT)
    types = [1] * (len(tokens) - 1) + [3]
    assert len(tokens) == 301
    return tokens, types


# ---------------------------------------------------------------------------------------------
# Model specs: metadata (key, gguf type, value) in write order and tensors (name, numpy shape, type)

F32, F16 = "F32", "F16"


def gpt2_spec():
    d, n_layer, n_head, ffn, n_ctx = 32, 2, 4, 128, 64
    tokens, types = vocabulary()
    meta = [
        ("general.architecture", "string", "gpt2"),
        ("general.name", "string", "tiny-gpt2"),
        ("gpt2.context_length", "uint32", n_ctx),
        ("gpt2.embedding_length", "uint32", d),
        ("gpt2.feed_forward_length", "uint32", ffn),
        ("gpt2.block_count", "uint32", n_layer),
        ("gpt2.attention.head_count", "uint32", n_head),
        ("gpt2.attention.layer_norm_epsilon", "float32", 1e-5),
        ("tokenizer.ggml.model", "string", "gpt2"),
        ("tokenizer.ggml.pre", "string", "gpt2"),
        ("tokenizer.ggml.tokens", "string_array", tokens),
        ("tokenizer.ggml.token_type", "int32_array", types),
        ("tokenizer.ggml.merges", "string_array", MERGES),
        ("tokenizer.ggml.bos_token_id", "uint32", 300),
        ("tokenizer.ggml.eos_token_id", "uint32", 300),
    ]
    V = len(tokens)
    tensors = [("token_embd.weight", (V, d), F32), ("position_embd.weight", (n_ctx, d), F16)]
    for b in range(n_layer):
        p = f"blk.{b}."
        tensors += [
            (p + "attn_norm.weight", (d,), F32),
            (p + "attn_norm.bias", (d,), F32),
            (p + "attn_qkv.weight", (3 * d, d), F32),
            (p + "attn_qkv.bias", (3 * d,), F32),
            (p + "attn_output.weight", (d, d), F32),
            (p + "attn_output.bias", (d,), F32),
            (p + "ffn_norm.weight", (d,), F32),
            (p + "ffn_norm.bias", (d,), F32),
            (p + "ffn_up.weight", (ffn, d), F32),
            (p + "ffn_up.bias", (ffn,), F32),
            (p + "ffn_down.weight", (d, ffn), F32),
            (p + "ffn_down.bias", (d,), F32),
        ]
    tensors += [("output_norm.weight", (d,), F32), ("output_norm.bias", (d,), F32)]
    config = dict(architecture="gpt2", vocab_size=V, context_length=n_ctx, hidden_size=d, num_layers=n_layer,
                  num_heads=n_head, intermediate_size=ffn, layer_norm_epsilon=1e-5, activation="gelu_new (tanh)",
                  tied_output=True)
    return meta, tensors, config


def llama_spec():
    d, n_layer, n_head, n_kv, ffn, n_ctx = 32, 2, 4, 2, 48, 64
    hd = d // n_head
    tokens, types = vocabulary()
    meta = [
        ("general.architecture", "string", "llama"),
        ("general.name", "string", "tiny-llama"),
        ("llama.vocab_size", "uint32", len(tokens)),
        ("llama.context_length", "uint32", n_ctx),
        ("llama.embedding_length", "uint32", d),
        ("llama.feed_forward_length", "uint32", ffn),
        ("llama.block_count", "uint32", n_layer),
        ("llama.attention.head_count", "uint32", n_head),
        ("llama.attention.head_count_kv", "uint32", n_kv),
        ("llama.rope.dimension_count", "uint32", hd),
        ("llama.rope.freq_base", "float32", 10000.0),
        ("llama.attention.layer_norm_rms_epsilon", "float32", 1e-5),
        ("tokenizer.ggml.model", "string", "gpt2"),
        ("tokenizer.ggml.pre", "string", "gpt2"),
        ("tokenizer.ggml.tokens", "string_array", tokens),
        ("tokenizer.ggml.token_type", "int32_array", types),
        ("tokenizer.ggml.merges", "string_array", MERGES),
        ("tokenizer.ggml.bos_token_id", "uint32", 300),
        ("tokenizer.ggml.eos_token_id", "uint32", 300),
    ]
    V = len(tokens)
    tensors = [("token_embd.weight", (V, d), F16)]
    for b in range(n_layer):
        p = f"blk.{b}."
        tensors += [
            (p + "attn_norm.weight", (d,), F32),
            (p + "attn_q.weight", (n_head * hd, d), F32),
            (p + "attn_k.weight", (n_kv * hd, d), F32),
            (p + "attn_v.weight", (n_kv * hd, d), F32),
            (p + "attn_output.weight", (d, n_head * hd), F32),
            (p + "ffn_norm.weight", (d,), F32),
            (p + "ffn_gate.weight", (ffn, d), F32),
            (p + "ffn_up.weight", (ffn, d), F32),
            (p + "ffn_down.weight", (d, ffn), F32),
        ]
    tensors += [("output_norm.weight", (d,), F32), ("output.weight", (V, d), F32)]
    config = dict(architecture="llama", vocab_size=V, context_length=n_ctx, hidden_size=d, num_layers=n_layer,
                  num_heads=n_head, num_kv_heads=n_kv, head_dim=hd, intermediate_size=ffn, rope_freq_base=10000.0,
                  rms_norm_eps=1e-5, tied_output=False)
    return meta, tensors, config


def stored_values(name, shape, ttype):
    """The tensor exactly as stored (F32, or F16 rounded from the float32 formula value)."""
    vals = formula_values(name, int(np.prod(shape))).reshape(shape)
    return vals.astype(np.float16) if ttype == F16 else vals


def write_gguf(path, meta, tensors):
    arch = meta[0][2]
    w = gguf.GGUFWriter(path, arch)  # writes general.architecture itself
    for key, vtype, value in meta[1:]:
        if vtype == "string":
            w.add_string(key, value)
        elif vtype == "uint32":
            w.add_uint32(key, value)
        elif vtype == "float32":
            w.add_float32(key, value)
        elif vtype == "string_array":
            w.add_array(key, list(value))
        elif vtype == "int32_array":
            w.add_key_value(key, list(value), gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.INT32)
        else:
            raise ValueError(vtype)
    for name, shape, ttype in tensors:
        w.add_tensor(name, stored_values(name, shape, ttype))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------------------------------------
# Independent models (no GGUF loader) for the consistency check


def direct_gpt2(tensors, config):
    d, L = config["hidden_size"], config["num_layers"]
    cfg = transformers.GPT2Config(vocab_size=config["vocab_size"], n_positions=config["context_length"], n_embd=d,
                                  n_layer=L, n_head=config["num_heads"], n_inner=config["intermediate_size"],
                                  activation_function="gelu_new", layer_norm_epsilon=config["layer_norm_epsilon"],
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
                                  bos_token_id=300, eos_token_id=300)
    m = transformers.GPT2LMHeadModel(cfg)
    m.config._attn_implementation = "eager"
    t = {name: torch.from_numpy(stored_values(name, shape, tt).astype(np.float32)) for name, shape, tt in tensors}
    sd = {"transformer.wte.weight": t["token_embd.weight"], "transformer.wpe.weight": t["position_embd.weight"],
          "transformer.ln_f.weight": t["output_norm.weight"], "transformer.ln_f.bias": t["output_norm.bias"]}
    for b in range(L):
        p, h = f"blk.{b}.", f"transformer.h.{b}."
        sd.update({
            h + "ln_1.weight": t[p + "attn_norm.weight"], h + "ln_1.bias": t[p + "attn_norm.bias"],
            h + "attn.c_attn.weight": t[p + "attn_qkv.weight"].T, h + "attn.c_attn.bias": t[p + "attn_qkv.bias"],
            h + "attn.c_proj.weight": t[p + "attn_output.weight"].T, h + "attn.c_proj.bias": t[p + "attn_output.bias"],
            h + "ln_2.weight": t[p + "ffn_norm.weight"], h + "ln_2.bias": t[p + "ffn_norm.bias"],
            h + "mlp.c_fc.weight": t[p + "ffn_up.weight"].T, h + "mlp.c_fc.bias": t[p + "ffn_up.bias"],
            h + "mlp.c_proj.weight": t[p + "ffn_down.weight"].T, h + "mlp.c_proj.bias": t[p + "ffn_down.bias"],
        })
    sd["lm_head.weight"] = t["token_embd.weight"]
    missing, unexpected = m.load_state_dict({k: v.contiguous() for k, v in sd.items()}, strict=False)
    assert not unexpected and all(k.endswith("attn.bias") or k.endswith("masked_bias") for k in missing), (missing, unexpected)
    return m.eval()


def unpermute(w, n_head):
    """Inverse of llama.cpp convert_hf_to_gguf's permute() (HF rotate-half layout from GGUF layout)."""
    out, inp = w.shape
    return w.reshape(n_head, out // n_head // 2, 2, inp).transpose(1, 2).reshape(out, inp)


def direct_llama(tensors, config):
    d, L = config["hidden_size"], config["num_layers"]
    cfg = transformers.LlamaConfig(vocab_size=config["vocab_size"], hidden_size=d, intermediate_size=config["intermediate_size"],
                                   num_hidden_layers=L, num_attention_heads=config["num_heads"],
                                   num_key_value_heads=config["num_kv_heads"], head_dim=config["head_dim"],
                                   max_position_embeddings=config["context_length"], rms_norm_eps=config["rms_norm_eps"],
                                   rope_theta=config["rope_freq_base"], tie_word_embeddings=False,
                                   attention_bias=False, mlp_bias=False)
    m = transformers.LlamaForCausalLM(cfg)
    m.config._attn_implementation = "eager"
    t = {name: torch.from_numpy(stored_values(name, shape, tt).astype(np.float32)) for name, shape, tt in tensors}
    sd = {"model.embed_tokens.weight": t["token_embd.weight"], "model.norm.weight": t["output_norm.weight"],
          "lm_head.weight": t["output.weight"]}
    for b in range(L):
        p, h = f"blk.{b}.", f"model.layers.{b}."
        sd.update({
            h + "input_layernorm.weight": t[p + "attn_norm.weight"],
            h + "self_attn.q_proj.weight": unpermute(t[p + "attn_q.weight"], config["num_heads"]),
            h + "self_attn.k_proj.weight": unpermute(t[p + "attn_k.weight"], config["num_kv_heads"]),
            h + "self_attn.v_proj.weight": t[p + "attn_v.weight"],
            h + "self_attn.o_proj.weight": t[p + "attn_output.weight"],
            h + "post_attention_layernorm.weight": t[p + "ffn_norm.weight"],
            h + "mlp.gate_proj.weight": t[p + "ffn_gate.weight"],
            h + "mlp.up_proj.weight": t[p + "ffn_up.weight"],
            h + "mlp.down_proj.weight": t[p + "ffn_down.weight"],
        })
    missing, unexpected = m.load_state_dict({k: v.contiguous() for k, v in sd.items()}, strict=False)
    assert not unexpected and not [k for k in missing if "rotary" not in k], (missing, unexpected)
    return m.eval()


# ---------------------------------------------------------------------------------------------
# Reference outputs


def f7(x):
    return float(f"{float(x):.7g}")


def run_reference(model, direct_model, config):
    seqs = []
    worst = 0.0
    for k, ids in enumerate(SEQUENCES):
        x = torch.tensor([ids], dtype=torch.long)
        with torch.no_grad():
            out = model(x, output_attentions=True, use_cache=False)
            ref = direct_model(x, use_cache=False).logits
        logits = out.logits[0]
        worst = max(worst, float((logits - ref[0]).abs().max()))
        top2 = torch.topk(logits, 2, dim=-1).values
        gen = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=NUM_GREEDY,
                             eos_token_id=None, pad_token_id=300, output_scores=True, return_dict_in_generate=True)
        new_ids = gen.sequences[0, len(ids):].tolist()
        assert len(new_ids) == NUM_GREEDY
        entry = {
            "input_ids": ids,
            "logits": [[f7(v) for v in row] for row in logits],
            "max_abs_logit": f7(logits.abs().max()),
            "argmax_ids": logits.argmax(-1).tolist(),
            "argmax_margin": [f7(v) for v in (top2[:, 0] - top2[:, 1])],
            "greedy_ids": new_ids,
            "greedy_margins": [f7(torch.topk(s[0], 2).values[0] - torch.topk(s[0], 2).values[1]) for s in gen.scores],
        }
        if k == ATTENTION_SEQUENCE:
            entry["attention_layer0_head0"] = [[f7(v) for v in row] for row in out.attentions[0][0, 0]]
        seqs.append(entry)
    return seqs, worst


def tensor_summary(tensors):
    out = []
    for name, shape, tt in tensors:
        vals = stored_values(name, shape, tt).astype(np.float32).reshape(-1)
        out.append({"name": name, "ne": list(reversed(shape)), "type": tt, "fnv1a32": fnv1a32(name),
                    "sum": float(vals.astype(np.float64).sum()), "first": [float(v) for v in vals[:4]]})
    return out


def meta_summary(meta):
    out = []
    for key, vtype, value in meta:
        if vtype.endswith("_array"):
            out.append({"key": key, "type": vtype, "count": len(value)})
        else:
            out.append({"key": key, "type": vtype, "value": value})
    return out


def compact_dump(doc, path):
    """JSON with indent=1, but lists of numbers kept on one line."""
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    text = re.sub(r"\[\s*([-0-9.eE+,\s]+?)\s*\]", lambda m: "[" + re.sub(r"\s+", "", m.group(1)).replace(",", ", ") + "]", text)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", default="tests/data/reference", help="where the JSON files go")
    ap.add_argument("--keep-gguf", help="directory to keep the GGUF files in (default: a temp dir)")
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)
    for name in ("token_embd.weight", "blk.0.attn_q.weight", "output_norm.weight", "blk.1.ffn_up.bias"):
        vec = formula_values(name, 50)
        assert all(vec[i] == _scalar_formula(name, i) for i in range(50)), name

    tmp = tempfile.TemporaryDirectory()
    gguf_dir = args.keep_gguf or tmp.name
    os.makedirs(gguf_dir, exist_ok=True)
    os.makedirs(args.out_dir, exist_ok=True)

    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "gguf": importlib.metadata.version("gguf"), "numpy": np.__version__}
    formula = {
        "seed": "fnv1a32(tensor name): h=2166136261; per byte h^=b; h*=16777619 (mod 2^32)",
        "hash": "x=s*2654435761+i*40503+12345; x^=x>>16; x*=0x7feb352d; x^=x>>15; x*=0x846ca68b; x^=x>>16 (uint32)",
        "value": "v=(x>>8)%2001-1000; n=base+v*step; value=float32(n)/float32(1000000); F16 tensors store that rounded to half",
        "kinds": [
            {"match": "name ends with _norm.weight", "base": 1000000, "step": 100},
            {"match": "name ends with .bias", "base": 0, "step": 50},
            {"match": "token_embd.weight or position_embd.weight", "base": 0, "step": 500},
            {"match": "otherwise", "base": 0, "step": 250},
        ],
        "index": "flat index in GGUF data order (ne[0] fastest)",
    }

    for label, spec, direct in (("tiny_gpt2", gpt2_spec, direct_gpt2), ("tiny_llama", llama_spec, direct_llama)):
        meta, tensors, config = spec()
        path = os.path.join(gguf_dir, label + ".gguf")
        write_gguf(path, meta, tensors)
        # transformers maps gpt2.context_length to `n_ctx` and gpt2.feed_forward_length to an unused
        # `feed_forward_length`, so GPT-2's n_positions (wpe rows) and n_inner must be passed explicitly.
        overrides = ({"n_positions": config["context_length"], "n_inner": config["intermediate_size"]}
                     if config["architecture"] == "gpt2" else {})
        model = transformers.AutoModelForCausalLM.from_pretrained(
            gguf_dir, gguf_file=label + ".gguf", dtype=torch.float32, attn_implementation="eager",
            **overrides).eval()
        direct_model = direct(tensors, config)
        seqs, worst = run_reference(model, direct_model, config)
        print(f"{label}: GGUF load vs direct build max |logit diff| = {worst:.3g}", file=sys.stderr)
        assert worst < 1e-4, f"{label}: transformers' GGUF load disagrees with the direct build ({worst})"
        hf_cfg = model.config.to_dict()
        doc = {
            "description": f"{label}: transformers reference for the formula-weight tiny model; see "
                           "tools/make_tiny_models.py and tests/support/tiny_models.h",
            "versions": versions,
            "formula": formula,
            "config": config,
            "transformers_config": {k: hf_cfg.get(k) for k in sorted(hf_cfg) if k in (
                "model_type", "vocab_size", "n_positions", "n_ctx", "n_embd", "n_layer", "n_head", "n_inner",
                "activation_function", "layer_norm_epsilon", "hidden_size", "intermediate_size",
                "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
                "max_position_embeddings", "rms_norm_eps", "rope_parameters", "tie_word_embeddings",
                "hidden_act")},
            "transformers_config_overrides": overrides,
            "gguf_vs_direct_max_abs_diff": worst,
            "metadata": meta_summary(meta),
            "tensors": tensor_summary(tensors),
            "greedy_note": "do_sample=False, 10 new tokens, EOS does not stop generation",
            "attention_note": "attention_layer0_head0 on sequence index %d: softmax probabilities [query][key]"
                              % ATTENTION_SEQUENCE,
            "sequences": seqs,
        }
        out = os.path.join(args.out_dir, label + ".json")
        compact_dump(doc, out)
        print(f"wrote {out} ({os.path.getsize(out)} bytes); GGUF {path} ({os.path.getsize(path)} bytes)",
              file=sys.stderr)


if __name__ == "__main__":
    main()
