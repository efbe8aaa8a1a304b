#!/usr/bin/env python3
"""Forward-pass reference for Gemma 3 270M (Q4_K_M GGUF) from transformers.

transformers loads the GGUF that tools/setup.sh assembles (``AutoModelForCausalLM.from_pretrained(dir,
gguf_file=name, attn_implementation="eager", dtype=float32)``); gguf-py dequantizes every tensor to
float32 (Q4_K, Q5_0, Q6_K, Q8_0 blocks) and transformers subtracts 1 from the GGUF's w+1 norms, so the
numbers are those of the quantized model run in float32.

Run::

    /work/refenv/bin/python tools/make_gemma_reference.py \
        --gguf .deps/models/gemma-3-270m-q4_k_m.gguf --out tests/data/reference/gemma3_270m.json

Tokenization: transformers' GGUF tokenizer for gemma3 (AutoTokenizer.from_pretrained(dir, gguf_file=...)),
which adds <bos> (tokenizer.ggml.add_bos_token is true) and matches <start_of_turn> / <end_of_turn> as
single control tokens. The ids are recorded, so a test needs no tokenizer.

Prompts: a plain sentence, a Gemma chat turn, and prose repeated to >= 600 tokens so that the 512-token
sliding window of the local layers is exceeded (queries >= 512 cannot see position 0 there).

Per prompt (T tokens, V = 262144):
  * input_ids (with BOS), n_tokens
  * last: top-10 ids and logits at position T-1, logsumexp of that row, and the whole row as
    ``logits_f32_le_base64`` (base64 of V little-endian float32: numpy.frombuffer(b64decode(s), "<f4"))
  * greedy: 20 new ids from model.generate(do_sample=False) with the KV cache, EOS not stopping it
    (eos_token_id cleared), the top-1/top-2 margin per step, the decoded text
  * first_token_mass: [layer][head] mean attention probability on key 0, over all queries
    (``all_queries``), over queries 1..T-1 (``queries_ge_1``) and, for prompts longer than the window,
    over queries >= sliding_window (``queries_ge_window``: 0 on sliding layers, where key 0 is masked)
Top level: the GGUF's own gemma3.* keys and general.file_type, the config transformers built from them
(``transformers_config``), and ``config_agreement``: which of the values transformers uses come from the
file and which are transformers' fixed defaults (query_pre_attn_scalar 256, local RoPE theta 1e4, sliding
pattern 6 -> layer_types), compared with what the file says where it says anything.

Deterministic: fixed prompts, greedy decoding, 2 CPU threads. Floats: 8 significant digits.
"""

import argparse
import base64
import hashlib
import importlib.metadata
import json
import os
import re
import sys

import gguf
import numpy as np
import torch
import transformers

SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
NUM_GREEDY = 20

PROSE = (
    "Every morning the old lighthouse keeper climbed the narrow stairs with a flask of tea and a notebook "
    "full of weather notes. He wrote down the colour of the sea, the direction of the wind and the names of "
    "the boats that passed before noon. Most days nothing unusual happened, yet he never skipped an entry. "
    "Years later a young researcher found the notebooks in a wooden box and used them to study how the shape "
    "of the coastline had slowly changed. She counted the storms, the calm weeks and the days of fog, and she "
    "drew a map of the rocks that the waves had moved. "
)

PROMPTS = [
    ("plain", "The capital of France is"),
    ("chat", "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n"),
    ("long", None),  # PROSE repeated until >= 600 tokens
]


def f8(x):
    return float(f"{float(x):.8g}")


def compact_dump(doc, path):
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    text = re.sub(r"\[\s*([-0-9.eE+,\s]+?)\s*\]",
                  lambda m: "[" + re.sub(r"\s+", "", m.group(1)).replace(",", ", ") + "]", text)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def gguf_keys(path):
    r = gguf.GGUFReader(path)
    keys = {}
    for name, field in r.fields.items():
        if name.startswith("gemma3.") or name in ("general.architecture", "general.name", "general.file_type",
                                                  "general.quantization_version") or (
                name.startswith("tokenizer.ggml.") and name not in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                                                                    "tokenizer.ggml.token_type", "tokenizer.ggml.merges")):
            keys[name] = field.contents()
    types = {}
    for t in r.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    return keys, types


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gguf", default=".deps/models/gemma-3-270m-q4_k_m.gguf")
    ap.add_argument("--out", default="tests/data/reference/gemma3_270m.json")
    ap.add_argument("--skip-sha", action="store_true", help="do not check the file's SHA-256")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)

    if not args.skip_sha:
        h = hashlib.sha256()
        with open(args.gguf, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        assert h.hexdigest() == SHA256, f"{args.gguf}: SHA-256 {h.hexdigest()}, expected {SHA256}"

    keys, tensor_types = gguf_keys(args.gguf)
    print("GGUF keys:", file=sys.stderr)
    for k, v in keys.items():
        if k.startswith("gemma3.") or k.startswith("general."):
            print(f"  {k} = {v}", file=sys.stderr)

    d, name = os.path.split(os.path.abspath(args.gguf))
    tok = transformers.AutoTokenizer.from_pretrained(d, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32,
                                                              attn_implementation="eager").eval()
    cfg = model.config
    print("transformers config:", {k: getattr(cfg, k, None) for k in (
        "query_pre_attn_scalar", "sliding_window", "head_dim", "rope_parameters", "final_logit_softcapping",
        "layer_types")}, file=sys.stderr)

    W = cfg.sliding_window
    prompts = []
    for pname, text in PROMPTS:
        if text is None:
            text = PROSE
            while len(tok(text)["input_ids"]) < 600:
                text += PROSE
        prompts.append((pname, text))

    entries = []
    for pname, text in prompts:
        ids = tok(text)["input_ids"]
        T = len(ids)
        x = torch.tensor([ids])
        out = model(x, output_attentions=True, use_cache=False, logits_to_keep=1)
        last = out.logits[0, -1].float()
        top = torch.topk(last, 10)
        mass_all, mass_ge1, mass_gew = [], [], []
        for a in out.attentions:  # [1, H, T, T]
            col = a[0, :, :, 0].float()  # [H, T] attention of each query to key 0
            mass_all.append([f8(v) for v in col.mean(-1)])
            mass_ge1.append([f8(v) for v in col[:, 1:].mean(-1)] if T > 1 else None)
            if W is not None and T > W:
                mass_gew.append([f8(v) for v in col[:, W:].mean(-1)])
        del out
        gen = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=NUM_GREEDY,
                             eos_token_id=None, pad_token_id=cfg.pad_token_id, output_scores=True,
                             return_dict_in_generate=True, top_k=None, top_p=None, temperature=None)
        new_ids = gen.sequences[0, T:].tolist()
        assert len(new_ids) == NUM_GREEDY
        margins = []
        for s in gen.scores:
            t2 = torch.topk(s[0].float(), 2).values
            margins.append(f8(t2[0] - t2[1]))
        eos_ids = {int(e) for e in ([cfg.eos_token_id] if isinstance(cfg.eos_token_id, int) else cfg.eos_token_id or [])}
        e = {
            "name": pname,
            "text": text,
            "n_tokens": T,
            "input_ids": ids,
            "last": {
                "top10_ids": top.indices.tolist(),
                "top10_logits": [f8(v) for v in top.values],
                "logsumexp": f8(torch.logsumexp(last.double(), 0)),
                "logits_f32_le_base64": base64.b64encode(last.numpy().astype("<f4").tobytes()).decode("ascii"),
            },
            "greedy": {"ids": new_ids, "margins": margins, "text": tok.decode(new_ids),
                       "eos_step": next((i for i, t in enumerate(new_ids) if t in eos_ids), None)},
            "first_token_mass": {"all_queries": mass_all, "queries_ge_1": mass_ge1},
        }
        if mass_gew:
            e["first_token_mass"]["queries_ge_window"] = mass_gew
        entries.append(e)
        print(f"{pname}: T={T} top1={top.indices[0].item()} ({tok.decode([top.indices[0].item()])!r}) "
              f"greedy={tok.decode(new_ids)!r}", file=sys.stderr)

    rp = cfg.rope_parameters
    full_theta = rp["full_attention"]["rope_theta"]
    local_theta = rp["sliding_attention"]["rope_theta"]
    agreement = {
        "sliding_window": {"gguf": keys.get("gemma3.attention.sliding_window"), "transformers": cfg.sliding_window},
        "head_dim": {"gguf key_length": keys.get("gemma3.attention.key_length"), "transformers": cfg.head_dim},
        "rope_theta_full": {"gguf rope.freq_base": keys.get("gemma3.rope.freq_base"), "transformers": full_theta},
        "rope_theta_local": {"gguf rope.freq_base_swa": keys.get("gemma3.rope.freq_base_swa"),
                             "transformers (fixed default)": local_theta},
        "query_pre_attn_scalar": {"gguf": None, "transformers (fixed default)": cfg.query_pre_attn_scalar,
                                  "llama.cpp": "1/sqrt(key_length) for this size"},
        "sliding_pattern": {"gguf attention.sliding_window_pattern": keys.get("gemma3.attention.sliding_window_pattern"),
                            "transformers layer_types (pattern 6 default)": cfg.layer_types},
        "final_logit_softcapping": {"gguf": keys.get("gemma3.final_logit_softcapping"),
                                    "transformers": cfg.final_logit_softcapping},
        "note": "The file carries no query_pre_attn_scalar, local theta or pattern; transformers' 256 / 1e4 / 6 are "
                "the values of google/gemma-3-270m's config.json (query_pre_attn_scalar 256 = head_dim here, "
                "rope_local_base_freq 10000, every 6th layer full), so the reference is that model's.",
    }
    hf_cfg = cfg.to_dict()
    doc = {
        "description": "Gemma 3 270M Q4_K_M (gemma-3-270m-q4_k_m.gguf, tools/setup.sh) run by transformers in float32, "
                       "eager attention; see tools/make_gemma_reference.py",
        "gguf_file": os.path.basename(args.gguf),
        "gguf_sha256": SHA256,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "gguf": importlib.metadata.version("gguf"), "numpy": np.__version__},
        "gguf_keys": keys,
        "gguf_tensor_types": tensor_types,
        "transformers_config": {k: hf_cfg.get(k) for k in sorted(hf_cfg) if k in (
            "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps", "rope_parameters",
            "query_pre_attn_scalar", "sliding_window", "layer_types", "final_logit_softcapping",
            "attn_logit_softcapping", "hidden_activation", "tie_word_embeddings", "bos_token_id", "eos_token_id",
            "pad_token_id")},
        "config_agreement": agreement,
        "tokenizer": {"class": type(tok).__name__, "bos_added": True,
                      "special_ids": {"<bos>": tok.convert_tokens_to_ids("<bos>"),
                                      "<eos>": tok.convert_tokens_to_ids("<eos>"),
                                      "<start_of_turn>": tok.convert_tokens_to_ids("<start_of_turn>"),
                                      "<end_of_turn>": tok.convert_tokens_to_ids("<end_of_turn>")}},
        "greedy_note": f"model.generate(do_sample=False, max_new_tokens={NUM_GREEDY}) with KV cache; eos_token_id "
                       "cleared so EOS does not stop it",
        "prompts": entries,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    compact_dump(doc, args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
