#!/usr/bin/env python3
"""Tiny random-weight models for every decoder family SinkScope reads, with transformers references.

For each family this writes tests/data/families/<family>/:

  hf/            config.json, model.safetensors (save_pretrained), generation_config.json,
                 tokenizer.json and tokenizer_config.json (a tiny BPE trained here, below)
  hf_mxfp4/      gpt_oss only: the same weights with the experts stored as MXFP4 *_blocks/*_scales,
                 the layout of the released gpt-oss checkpoints (transformers integrations/mxfp4.py)
  model.gguf     where llama.cpp has a GGUF form: written with gguf.GGUFWriter applying the
                 transforms and keys of llama.cpp's convert_hf_to_gguf.py (docs: ../shared/docs/MODELS.md
                 §2-3): Q/K permute for arch llama (also Mistral), Gemma norms stored w+1, gptneox
                 attn_qkv reordered to [Q;K;V], phi3 fused tensors and rope factor tensors, gpt-oss sinks,
                 router and de-interleaved MXFP4 experts, Llama 3 rope_freqs
  reference.json the reference computed by transformers in float32 from the *stored* weights (the HF
                 folder is reloaded with dtype=float32, so bf16/f16 folders give the rounded weights'
                 outputs), eager attention, use_cache=False:
                   sequences[k].input_ids, .logits [T][V], .attentions [L][H][T][T] (post-softmax,
                   output_attentions=True), .greedy_ids (10 argmax steps of a manual loop that reruns the
                   whole sequence each step; EOS does not stop it), .argmax_margin (top1 - top2 per
                   position; a test should not insist on an argmax where it is tiny) and, for gpt_oss,
                   .sink_share [L][H][T] = 1 - row sum (the probability the learned sink took);
                   config (the exact config.json), features (what the model exercises), layer_types,
                   gguf (file, tensor types, the GGUF keys written, and the verification done),
                   tokenizer (kind, BOS behaviour, a few strings with the ids of tokenizers.Tokenizer
                   from tokenizer.json and of transformers' AutoTokenizer), versions.
                 Floats are written with 8 significant digits (float32 has ~7.2).

Storage: qwen2 and gpt_oss are saved in bf16, phi3 and gpt_neox in f16 (the random float32 model is cast
and saved; the reference runs in float32 on the stored, rounded weights; the GGUFs keep those matrices in
BF16 / F16 and 1-D tensors in F32, as llama.cpp's converter does); the other families are float32.

Also tests/data/families/traced/: llama_traced.pt, a torch.jit.trace of a tiny HF Llama wrapped to the
shape SinkScope's generic TorchScript loader expects (core/src/model/model.cpp, "Generic"; used by
tests/core/model/model_loading_test.cpp and tests/ui/model_files_test.cpp): forward(input_ids [1, T] int64) -> (logits [1, T, V],
(attn_layer0 [1, H, T, T], attn_layer1 [1, H, T, T], ...)), float32; and its reference.json.

Run (reference environment, 1-2 CPU threads)::

    /work/refenv/bin/python tools/make_family_models.py [--out tests/data/families] [--only llama,qwen2]

Everything is reproducible: the tokenizers are trained on the fixed CORPUS below and every weight
comes from torch.Generator().manual_seed(SEED + family index). Weights are drawn, not left at
transformers' init (which makes attention nearly uniform and norms exactly 1 or 0): matrices
N(0, 1/in_features), embeddings N(0, 1) (N(0, 1/hidden) when tied), biases N(0, 0.1^2), norm weights 1 + N(0, 0.2^2) (Gemma:
w = N(0, 0.2^2) around 0 since it computes x*(1+w), with q/k norms larger so attention is not flat;
all Gemma norm weights are multiples of 2^-10 so that the GGUF's w+1 is exact), gpt-oss sinks N(0, 1),
gpt-oss experts exactly representable in MXFP4 (see make_mxfp4_weights).

Tokenizers (vocabulary size = embedding rows) are trained with the `tokenizers` library in the shape
of each family's real tokenizer.json:
  llama3   ByteLevel BPE, Split(Llama-3 regex) + ByteLevel(use_regex=False), <|begin_of_text|> added
           by a TemplateProcessing post-processor (GGUF pre "llama-bpe")
  qwen2    NFC, Split(Qwen2 regex) + ByteLevel(use_regex=False), no BOS (GGUF pre "qwen2")
  neox     NFC, ByteLevel(use_regex=True) (GPT-2 regex), <|endoftext|> id 0, <|padding|> id 1, no BOS
           (GGUF pre "gpt-2")
  olmo2    Split(cl100k = Llama-3 regex) + ByteLevel(use_regex=False), no BOS (GGUF pre "dbrx")
  o200k    gpt-oss: Split(o200k regex) + ByteLevel(use_regex=False), no BOS (GGUF pre "gpt-4o")
  gemma    SentencePiece-style BPE: byte_fallback, <0x00>..<0xFF>, normalizer Replace(" ", "▁"), no
           pre-tokenizer, <bos> added, <start_of_turn>/<end_of_turn> (GGUF model "llama" with scores)
  spm      Llama-2/Mistral/Phi-3 style: as gemma but normalizer Prepend("▁") + Replace, <s>, </s>,
           <unk>; phi3 adds <|endoftext|>, <|user|>, <|assistant|>, <|end|> at the end
The GGUF tokenizer keys are what llama.cpp writes: tokenizer.ggml.model/pre/tokens/token_type
(+ scores for SPM), merges and special ids via gguf.SpecialVocab (as convert_hf_to_gguf does).
"""

import argparse
import importlib.metadata
import json
import math
import os
import re
import shutil
import sys
import tempfile

import gguf
import numpy as np
import safetensors.torch
import tokenizers
import torch
import transformers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

SEED = 20240611
NUM_GREEDY = 10
SEQ_LEN = 22  # the long sequence: longer than every sliding window (8) and phi3's original context (16)
SHORT_LEN = 9

CORPUS = """\
Every morning the old lighthouse keeper climbed the narrow stairs with a flask of tea and a notebook
full of weather notes. He wrote down the colour of the sea, the direction of the wind and the names of
the boats that passed before noon. Most days nothing unusual happened, yet he never skipped an entry.
Years later a young researcher found the notebooks in a wooden box and used them to study how the
shape of the coastline had slowly changed. She counted the storms, the calm weeks and the days of fog,
and she drew a map of the rocks that the waves had moved. The village remembered the keeper as a quiet
man who liked bread, apples and long walks along the shore. In the evening he read the newspaper,
listened to the radio and wrote letters to his sister in the city. When the lamp was replaced by an
automatic light, he stayed in the house and kept writing, because the sea still changed every day.
The researcher says that the notes are more precise than many instruments of that time. She thinks
that patience is a kind of measurement: you look at the same thing again and again until it tells you
something new. Students now read the notebooks to learn how careful observation works. They compare
the old numbers with satellite data and find that the keeper was right about the winter currents.
A small museum shows one of the notebooks next to the brass telescope he used. Visitors ask whether
he was lonely; the answer, written on the last page, is that he never felt alone with the sea.
The capital of France is Paris, the capital of Italy is Rome and the capital of Spain is Madrid.
Water boils at one hundred degrees and freezes at zero; the year 1969 saw the first landing on the
moon. Cats sleep for many hours, dogs like to run, and birds sing before the sun rises over the hills.
"""

TEXT_LONG = "The keeper wrote the names of the boats and the colour of the sea in his notebook every day."
TEXT_SHORT = "The capital of France is Paris."
TOKENIZER_CASES = [TEXT_SHORT, "Hello world!  Two  spaces, digits 12345 and ünïcödé.", "<start_of_turn>user\nHi<end_of_turn>\n"]

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
O200K_REGEX = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
               r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
               r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def f8(x):
    return float(f"{float(x):.8g}")


def nested(t):
    """Tensor -> nested lists of 8-significant-digit floats."""
    a = t.detach().to(torch.float32).cpu().numpy()
    if a.ndim == 1:
        return [f8(v) for v in a]
    return [nested(torch.from_numpy(r)) for r in a]


def compact_dump(doc, path):
    """JSON with indent=1, but lists of numbers kept on one line (as tools/make_tiny_models.py)."""
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    text = re.sub(r"\[\s*([-0-9.eE+,\s]+?)\s*\]",
                  lambda m: "[" + re.sub(r"\s+", "", m.group(1)).replace(",", ", ") + "]", text)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


# ---------------------------------------------------------------------------------------------
# Tokenizers


def special(content):
    return AddedToken(content, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False)


BYTE_LEVEL_KINDS = {
    # kind: (normalizer NFC?, split regex or None for ByteLevel(use_regex=True), first specials, last specials,
    #        bos to add or None, gguf pre)
    "llama3": (False, LLAMA3_REGEX, [], ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
               "<|begin_of_text|>", "llama-bpe"),
    "qwen2": (True, QWEN2_REGEX, [], ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, "qwen2"),
    "neox": (True, None, ["<|endoftext|>", "<|padding|>"], [], None, "gpt-2"),
    "olmo2": (False, LLAMA3_REGEX, [], ["<|endoftext|>", "<|pad|>"], None, "dbrx"),
    "o200k": (False, O200K_REGEX, [], ["<|startoftext|>", "<|endoftext|>", "<|return|>", "<|start|>", "<|end|>",
                                       "<|message|>", "<|channel|>"], None, "gpt-4o"),
}


def build_byte_level(kind, vocab_size):
    nfc, regex, first, last, bos, _pre = BYTE_LEVEL_KINDS[kind]
    tok = Tokenizer(models.BPE())
    if nfc:
        tok.normalizer = normalizers.NFC()
    if regex is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(last), min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[special(s) for s in first])
    tok.train_from_iterator([CORPUS], trainer=trainer)
    tok.add_special_tokens([special(s) for s in last])
    if bos:
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                                          special_tokens=[(bos, bos_id)])])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    assert tok.get_vocab_size() == vocab_size, (kind, tok.get_vocab_size())
    return tok


SPM_KINDS = {
    # kind: (first specials (id order), trailing added specials, bos, prepend "▁"?)
    "gemma": (["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"], [], "<bos>", False),
    "spm": (["<unk>", "<s>", "</s>"], [], "<s>", True),
    "spm_phi3": (["<unk>", "<s>", "</s>"], ["<|endoftext|>", "<|assistant|>", "<|end|>", "<|user|>"], "<s>", True),
}


def build_spm(kind, vocab_size):
    first, last, bos, prepend = SPM_KINDS[kind]
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    n_learned = vocab_size - len(first) - len(last) - 256
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=n_learned, min_frequency=2, show_progress=False)
    trainer_tok.train_from_iterator([CORPUS], trainer=trainer)
    trained = json.loads(trainer_tok.to_str())["model"]
    learned = sorted(trained["vocab"].items(), key=lambda kv: kv[1])
    vocab = {}
    for s in first + byte_tokens:
        vocab[s] = len(vocab)
    for s, _ in learned:
        if s not in vocab:
            vocab[s] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    model = models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True)
    tok = Tokenizer(model)
    if prepend:
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
    else:
        tok.normalizer = normalizers.Replace(" ", "▁")
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([special(s) for s in first])
    tok.add_special_tokens([special(s) for s in last])
    bos_id = vocab[bos]
    tok.post_processor = processors.TemplateProcessing(single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                                                       special_tokens=[(bos, bos_id)])
    assert tok.get_vocab_size() == vocab_size, (kind, tok.get_vocab_size(), vocab_size)
    return tok


# tokenizer_config.json per kind: class, special tokens and whether BOS is added
TOKENIZER_CONFIGS = {
    "llama3": dict(tokenizer_class="PreTrainedTokenizerFast", bos_token="<|begin_of_text|>",
                   eos_token="<|end_of_text|>", add_bos_token=True, add_eos_token=False),
    "qwen2": dict(tokenizer_class="Qwen2Tokenizer", bos_token=None, eos_token="<|endoftext|>",
                  pad_token="<|endoftext|>", add_bos_token=False, add_eos_token=False, errors="replace",
                  split_special_tokens=False),
    "neox": dict(tokenizer_class="GPTNeoXTokenizer", bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                 unk_token="<|endoftext|>", pad_token="<|padding|>", add_bos_token=False, add_eos_token=False),
    "olmo2": dict(tokenizer_class="GPT2Tokenizer", bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                  pad_token="<|pad|>", unk_token="<|endoftext|>", add_bos_token=False, add_eos_token=False),
    "o200k": dict(tokenizer_class="PreTrainedTokenizerFast", bos_token="<|startoftext|>", eos_token="<|return|>",
                  pad_token="<|endoftext|>", add_bos_token=False, add_eos_token=False),
    "gemma": dict(tokenizer_class="GemmaTokenizer", bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                  unk_token="<unk>", add_bos_token=True, add_eos_token=False, spaces_between_special_tokens=False),
    "spm": dict(tokenizer_class="LlamaTokenizer", bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                pad_token=None, add_bos_token=True, add_eos_token=False, legacy=False),
    "spm_phi3": dict(tokenizer_class="LlamaTokenizer", bos_token="<s>", eos_token="<|endoftext|>",
                     unk_token="<unk>", pad_token="<|endoftext|>", add_bos_token=True, add_eos_token=False,
                     legacy=False),
}


def build_tokenizer(kind, vocab_size):
    tok = build_spm(kind, vocab_size) if kind in SPM_KINDS else build_byte_level(kind, vocab_size)
    cfg = dict(TOKENIZER_CONFIGS[kind])
    added = {}
    for t in json.loads(tok.to_str())["added_tokens"]:
        added[str(t["id"])] = {k: t[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
    cfg["added_tokens_decoder"] = added
    cfg["clean_up_tokenization_spaces"] = False
    cfg["model_max_length"] = 1024
    return tok, cfg


def save_tokenizer(tok, cfg, hf_dir):
    tok.save(os.path.join(hf_dir, "tokenizer.json"))
    with open(os.path.join(hf_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
        f.write("\n")


def token_id(tok, s):
    i = tok.token_to_id(s)
    assert i is not None, s
    return i


def gguf_tokenizer(writer, kind, hf_dir, vocab_size):
    """tokenizer.ggml.* as llama.cpp's convert_hf_to_gguf writes them for this tokenizer."""
    tj = json.load(open(os.path.join(hf_dir, "tokenizer.json"), encoding="utf-8"))
    vocab = dict(tj["model"]["vocab"])
    added = {t["content"]: t for t in tj["added_tokens"]}
    for t in tj["added_tokens"]:
        vocab[t["content"]] = t["id"]
    rev = {i: s for s, i in vocab.items()}
    assert sorted(rev) == list(range(vocab_size))
    tokens = [rev[i] for i in range(vocab_size)]
    if kind in SPM_KINDS:
        # _set_vocab_sentencepiece: model "llama", pre "default", scores; byte tokens type 6, <unk> 2,
        # control 3. Scores: learned pieces -rank (merge order = id order); specials and bytes 0.
        types, scores = [], []
        first_learned = len(SPM_KINDS[kind][0]) + 256
        for i, s in enumerate(tokens):
            if s == "<unk>":
                types.append(gguf.TokenType.UNKNOWN); scores.append(0.0)
            elif s in added:
                types.append(gguf.TokenType.CONTROL); scores.append(0.0 if i < first_learned else -1000.0)
            elif re.fullmatch(r"<0x[0-9A-F]{2}>", s):
                types.append(gguf.TokenType.BYTE); scores.append(0.0)
            else:
                types.append(gguf.TokenType.NORMAL); scores.append(float(-(i - first_learned)))
        writer.add_tokenizer_model("llama")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        sv = gguf.SpecialVocab(hf_dir, load_merges=False, n_vocab=vocab_size)
        sv.add_to_gguf(writer)
        if kind == "gemma":
            writer.add_add_space_prefix(False)
        return {"model": "llama", "pre": "default", "special": sv.special_token_ids, "add": sv.add_special_token}
    types = [gguf.TokenType.CONTROL if s in added else gguf.TokenType.NORMAL for s in tokens]
    pre = BYTE_LEVEL_KINDS[kind][5]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    sv = gguf.SpecialVocab(hf_dir, load_merges=True, n_vocab=vocab_size)
    assert sv.merges, "no merges read from tokenizer.json"
    sv.add_to_gguf(writer)
    return {"model": "gpt2", "pre": pre, "special": sv.special_token_ids, "add": sv.add_special_token,
            "merges": len(sv.merges)}


# ---------------------------------------------------------------------------------------------
# Weights


def randomize(model, gen, gemma=False):
    """Draw every parameter (see the module docstring).

    Tied models get embeddings N(0, 1/hidden): with N(0, 1) the input embedding dominates the residual
    stream and the tied head then predicts the input token again (degenerate greedy runs)."""
    tied = bool(model.config.tie_word_embeddings)
    hidden = model.config.hidden_size
    with torch.no_grad():
        for name, p in model.named_parameters():
            shape = p.shape
            if name.endswith("sinks"):
                v = torch.randn(shape, generator=gen)
            elif "norm" in name and name.endswith("weight"):
                if gemma:
                    spread = 1.0 if ("q_norm" in name or "k_norm" in name) else 0.0
                    v = spread + 0.2 * torch.randn(shape, generator=gen)
                    v = torch.round(v * 1024) / 1024  # w and w+1 exact in float32
                else:
                    v = 1.0 + 0.2 * torch.randn(shape, generator=gen)
            elif p.dim() == 1 or name.endswith("bias"):
                v = 0.1 * torch.randn(shape, generator=gen)
            elif "embed" in name or name.endswith("wte.weight"):
                v = torch.randn(shape, generator=gen) / (math.sqrt(hidden) if tied else 1.0)
            elif p.dim() == 2:
                v = torch.randn(shape, generator=gen) / math.sqrt(shape[1])
            elif p.dim() == 3:  # gpt-oss experts [E, in, out] (then replaced by MXFP4-exact values)
                v = torch.randn(shape, generator=gen) / math.sqrt(shape[1])
            else:
                raise ValueError(f"no rule for {name} {tuple(shape)}")
            p.copy_(v.to(p.dtype))


FP4_VALUES = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def make_mxfp4_weights(gen, e, n, k):
    """Random MXFP4-exact weights in HF's packed layout.

    Returns (blocks u8 [e, n, k/32, 16], scales u8 [e, n, k/32], values f32 [e, n, k]) with
    values[.., j] = FP4[nibble] * 2^(scale-127); byte m of a block holds element 2m in its low nibble
    and 2m+1 in its high nibble (transformers integrations/mxfp4.py convert_moe_packed_tensors).
    Every block has one +-6 or +-4 entry so the block maximum fixes the exponent a quantizer would pick.
    """
    nib = torch.randint(0, 16, (e, n, k), generator=gen)
    forced = torch.randint(0, 32, (e, n, k // 32), generator=gen)
    big = torch.tensor([7, 15, 6, 14])[torch.randint(0, 4, (e, n, k // 32), generator=gen)]
    nib = nib.view(e, n, k // 32, 32)
    nib.scatter_(3, forced.unsqueeze(-1), big.unsqueeze(-1))
    nib = nib.view(e, n, k)
    scales = (127 - 3 + torch.randint(0, 2, (e, n, k // 32), generator=gen)).to(torch.uint8)  # 2^-3 or 2^-2
    lut = torch.tensor(FP4_VALUES, dtype=torch.float32)
    vals = lut[nib] * torch.pow(2.0, scales.to(torch.float32) - 127).repeat_interleave(32, dim=-1)
    pairs = nib.view(e, n, k // 32, 16, 2).to(torch.uint8)
    blocks = pairs[..., 0] | (pairs[..., 1] << 4)
    return blocks.contiguous(), scales.contiguous(), vals


# ---------------------------------------------------------------------------------------------
# GGUF

FT_ALL_F32, FT_F16, FT_BF16, FT_MXFP4_MOE = 0, 1, 32, 38


def add_tensor(writer, name, t, mat_dtype):
    """1-D tensors F32 (llama.cpp keeps them so); matrices in the model's storage type."""
    a = t.detach().to(torch.float32).contiguous()
    if a.dim() <= 1 or mat_dtype == torch.float32:
        writer.add_tensor(name, a.numpy())
        return "F32"
    if mat_dtype == torch.float16:
        writer.add_tensor(name, a.numpy().astype(np.float16))
        return "F16"
    if mat_dtype == torch.bfloat16:
        raw = a.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        writer.add_tensor(name, raw, raw_shape=list(a.shape), raw_dtype=gguf.GGMLQuantizationType.BF16)
        return "BF16"
    raise ValueError(mat_dtype)


def permute(w, n_head):
    """llama.cpp LlamaModel.permute (HF rotate-half rows -> GGUF interleaved pairs)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_factors(rp, head_dim):
    """rope_freqs as llama.cpp's LlamaModel.generate_extra_tensors computes them (inv = inv_default / f).

    llama.cpp reads old_context_len from a top-level original_max_position_embeddings (default 8192);
    the HF config keeps it inside rope_parameters, which is what transformers uses, so it is taken from
    there: the factors must reproduce transformers' frequencies.
    """
    base = rp["rope_theta"]
    freqs = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    factor, low, high = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
    old = rp["original_max_position_embeddings"]
    out = []
    for f in freqs:
        wl = 2 * math.pi / f
        if wl < old / high:
            out.append(1)
        elif wl > old / low:
            out.append(factor)
        else:
            s = (old / wl - low) / (high - low)
            out.append(1 / ((1 - s) / factor + s))
    return torch.tensor(out, dtype=torch.float32)


def common_keys(w, c, ctx_key=True):
    """TextModel.set_gguf_parameters (base class) for the keys these configs have."""
    w.add_block_count(c["num_hidden_layers"])
    if ctx_key:
        w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(c["num_attention_heads"])
    if "num_key_value_heads" in c:
        w.add_head_count_kv(c["num_key_value_heads"])
    rp = c.get("rope_parameters") or {}
    rp_full = rp.get("full_attention", rp)
    rt = rp_full.get("rope_type")
    if rt == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rp_full["factor"])
    elif rt == "yarn":
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(rp_full["factor"])
        w.add_rope_scaling_orig_ctx_len(rp_full["original_max_position_embeddings"])
        if rp_full.get("attention_factor") is not None:
            w.add_rope_scaling_yarn_attn_factor(rp_full["attention_factor"])
        if rp_full.get("beta_fast") is not None:
            w.add_rope_scaling_yarn_beta_fast(rp_full["beta_fast"])
        if rp_full.get("beta_slow") is not None:
            w.add_rope_scaling_yarn_beta_slow(rp_full["beta_slow"])
    elif rt == "longrope":
        w.add_rope_scaling_type(gguf.RopeScalingType.LONGROPE)
    if rp_full.get("rope_theta") is not None:
        w.add_rope_freq_base(rp_full["rope_theta"])
    if rp.get("sliding_attention", {}).get("rope_theta") is not None:
        w.add_rope_freq_base_swa(rp["sliding_attention"]["rope_theta"])
    if c.get("rms_norm_eps") is not None:
        w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    if c.get("layer_norm_eps") is not None:
        w.add_layer_norm_eps(c["layer_norm_eps"])
    if c.get("num_local_experts") is not None:
        w.add_expert_count(c["num_local_experts"])
        w.add_expert_used_count(c["num_experts_per_tok"])
    if c.get("head_dim") is not None:
        w.add_key_length(c["head_dim"])
        w.add_value_length(c["head_dim"])


def gguf_keys_summary(path):
    r = gguf.GGUFReader(path)
    keys, tensors = {}, {}
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        if name.startswith("tokenizer.ggml.") and name in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges",
                                                            "tokenizer.ggml.token_type", "tokenizer.ggml.scores"):
            keys[name] = f"array[{len(field.data)}]"
            continue
        v = field.contents()
        keys[name] = v
    for t in r.tensors:
        tensors[t.name] = {"type": t.tensor_type.name, "ne": [int(x) for x in t.shape]}
    return keys, tensors


# ---------------------------------------------------------------------------------------------
# Reference


@torch.no_grad()
def run_reference(model, seqs, sinks=False):
    out_seqs = []
    for ids in seqs:
        x = torch.tensor([ids], dtype=torch.long)
        out = model(x, output_attentions=True, use_cache=False)
        logits = out.logits[0].float()
        att = torch.stack([a[0].float() for a in out.attentions])  # [L, H, T, T]
        top2 = torch.topk(logits, 2, dim=-1).values
        seq = list(ids)
        greedy, margins = [], []
        for _ in range(NUM_GREEDY):
            lg = model(torch.tensor([seq]), use_cache=False).logits[0, -1].float()
            t2 = torch.topk(lg, 2).values
            nxt = int(lg.argmax())
            greedy.append(nxt)
            margins.append(f8(t2[0] - t2[1]))
            seq.append(nxt)
        e = {"input_ids": list(ids), "logits": nested(logits), "argmax_ids": logits.argmax(-1).tolist(),
             "argmax_margin": nested(top2[:, 0] - top2[:, 1]), "max_abs_logit": f8(logits.abs().max()),
             "greedy_ids": greedy, "greedy_margins": margins, "attentions": nested(att)}
        if sinks:
            e["sink_share"] = nested(1.0 - att.sum(-1))
        out_seqs.append(e)
    return out_seqs


@torch.no_grad()
def max_logit_diff(a, b, seqs):
    worst = 0.0
    for ids in seqs:
        x = torch.tensor([ids])
        la = a(x, use_cache=False).logits.float()
        lb = b(x, use_cache=False).logits.float()
        worst = max(worst, float((la - lb).abs().max()))
    return worst


@torch.no_grad()
def max_attn_diff(a, b, seqs):
    worst = 0.0
    for ids in seqs:
        x = torch.tensor([ids])
        aa = a(x, output_attentions=True, use_cache=False).attentions
        ab = b(x, output_attentions=True, use_cache=False).attentions
        for p, q in zip(aa, ab):
            worst = max(worst, float((p.float() - q.float()).abs().max()))
    return worst


def load_hf(path, **kw):
    return transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32,
                                                             attn_implementation="eager", **kw).eval()


def load_gguf(path, **kw):
    d, f = os.path.split(path)
    return transformers.AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32,
                                                             attn_implementation="eager", **kw).eval()


# ---------------------------------------------------------------------------------------------
# Families


def ids_of(tok, name):
    return tok.token_to_id(name)


def cfg_llama(V, tok, rope, tied=False):
    return transformers.LlamaConfig(
        vocab_size=V, hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5, rope_parameters=rope,
        tie_word_embeddings=tied, bos_token_id=ids_of(tok, "<|begin_of_text|>"),
        eos_token_id=ids_of(tok, "<|end_of_text|>"), attention_bias=False, mlp_bias=False)


def cfg_mistral(V, tok):
    return transformers.MistralConfig(
        vocab_size=V, hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=128, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, sliding_window=8,
        tie_word_embeddings=False, bos_token_id=ids_of(tok, "<s>"), eos_token_id=ids_of(tok, "</s>"))


def cfg_qwen2(V, tok):
    return transformers.Qwen2Config(
        vocab_size=V, hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, use_sliding_window=True,
        sliding_window=8, max_window_layers=1, tie_word_embeddings=True,
        bos_token_id=ids_of(tok, "<|endoftext|>"), eos_token_id=ids_of(tok, "<|endoftext|>"))


def cfg_qwen3(V, tok):
    return transformers.Qwen3Config(
        vocab_size=V, hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=32, max_position_embeddings=128, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, use_sliding_window=False,
        tie_word_embeddings=False, attention_bias=False,
        bos_token_id=ids_of(tok, "<|endoftext|>"), eos_token_id=ids_of(tok, "<|endoftext|>"))


def cfg_gemma3(V, tok):
    return transformers.Gemma3TextConfig(
        vocab_size=V, hidden_size=64, intermediate_size=64, num_hidden_layers=6, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=256, max_position_embeddings=128,
        rms_norm_eps=1e-6, sliding_window=8, final_logit_softcapping=3.0, attn_logit_softcapping=None,
        hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
        layer_types=["sliding_attention"] * 5 + ["full_attention"],
        rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
        pad_token_id=ids_of(tok, "<pad>"), bos_token_id=ids_of(tok, "<bos>"), eos_token_id=ids_of(tok, "<eos>"))


def cfg_gpt_oss(V, tok):
    return transformers.GptOssConfig(
        vocab_size=V, hidden_size=64, intermediate_size=32, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, sliding_window=8, num_local_experts=4, num_experts_per_tok=2,
        max_position_embeddings=512, rms_norm_eps=1e-5, tie_word_embeddings=False, attention_bias=True,
        layer_types=["sliding_attention", "full_attention"] * 2,
        rope_parameters={"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0, "beta_fast": 32.0,
                         "beta_slow": 1.0, "truncate": False, "original_max_position_embeddings": 16},
        pad_token_id=ids_of(tok, "<|endoftext|>"), bos_token_id=ids_of(tok, "<|startoftext|>"),
        eos_token_id=ids_of(tok, "<|return|>"))


def cfg_phi3(V, tok):
    rot_half = int(16 * 0.5) // 2
    return transformers.Phi3Config(
        vocab_size=V, hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, original_max_position_embeddings=16,
        rms_norm_eps=1e-5, sliding_window=None, tie_word_embeddings=False,
        rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
                         "short_factor": [1.0, 1.1, 1.3, 1.6][:rot_half],
                         "long_factor": [1.0, 2.0, 4.5, 9.0][:rot_half],
                         "original_max_position_embeddings": 16},
        bos_token_id=ids_of(tok, "<s>"), eos_token_id=ids_of(tok, "<|endoftext|>"),
        pad_token_id=ids_of(tok, "<|endoftext|>"))


def cfg_gpt_neox(V, tok):
    return transformers.GPTNeoXConfig(
        vocab_size=V, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=128, layer_norm_eps=1e-5, hidden_act="gelu", use_parallel_residual=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25},
        tie_word_embeddings=False, attention_bias=True,
        bos_token_id=ids_of(tok, "<|endoftext|>"), eos_token_id=ids_of(tok, "<|endoftext|>"))


def cfg_olmo2(V, tok):
    return transformers.Olmo2Config(
        vocab_size=V, hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0}, tie_word_embeddings=False,
        attention_bias=False, pad_token_id=ids_of(tok, "<|pad|>"),
        bos_token_id=None, eos_token_id=ids_of(tok, "<|endoftext|>"))


# ---- GGUF writers ---------------------------------------------------------------------------


def _map(tmap, name):
    base = name
    for suffix in (".weight", ".bias"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            new = tmap.get_name(base, try_suffixes=())
            assert new is not None, name
            return new + suffix
    new = tmap.get_name(name, try_suffixes=())
    assert new is not None, name
    return new + ".weight"


def write_gguf(path, fam, hf_dir, cfg, tok_kind, V):
    """A GGUF as llama.cpp's converter would write it from hf_dir. Returns a description."""
    arch = fam["gguf_arch"]
    arch_enum = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch)
    L = cfg["num_hidden_layers"]
    tmap = gguf.get_tensor_name_map(arch_enum, L)
    stored = safetensors.torch.load_file(os.path.join(hf_dir, "model.safetensors"))
    mat_dtype = fam["dtype"]
    ftype = {torch.float32: FT_ALL_F32, torch.float16: FT_F16, torch.bfloat16: FT_BF16}[mat_dtype]
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"tiny-{fam['name']}")
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads", H)
    hd = cfg.get("head_dim") or cfg["hidden_size"] // H
    out = []  # (gguf name, tensor) in write order
    notes = []

    if arch == "llama":
        common_keys(w, cfg)
        w.add_vocab_size(V)
        w.add_rope_dimension_count(hd)
        for name, t in stored.items():
            if name.endswith("q_proj.weight"):
                t = permute(t, H)
            elif name.endswith("k_proj.weight"):
                t = permute(t, KV)
            out.append((_map(tmap, name), t))
        rp = cfg.get("rope_parameters") or {}
        if rp.get("rope_type") == "llama3":
            out.insert(0, ("rope_freqs.weight", llama3_rope_factors(rp, hd)))
        if cfg.get("sliding_window") is not None:
            notes.append("llama.cpp writes no sliding-window key for arch llama (Mistral): the GGUF has no "
                         f"window; HF's sliding_window={cfg['sliding_window']} is lost in this form")
        ftype_final = ftype
    elif arch in ("qwen2", "qwen3", "olmo2"):
        common_keys(w, cfg)
        for name, t in stored.items():
            out.append((_map(tmap, name), t))
        if arch == "qwen2" and cfg.get("sliding_window") is not None:
            notes.append("llama.cpp's Qwen2Model writes no sliding-window key: the GGUF has no window "
                         f"(HF layer_types {cfg['layer_types']}, window {cfg['sliding_window']})")
        ftype_final = ftype
    elif arch == "gemma3":
        # Gemma3Model.set_gguf_parameters re-adds context length, head counts, eps, key/value length and
        # rope.freq_base (global theta) with the same values common_keys writes; then:
        common_keys(w, cfg)
        if cfg.get("final_logit_softcapping"):
            w.add_final_logit_softcapping(cfg["final_logit_softcapping"])
        w.add_sliding_window(cfg["sliding_window"])
        for name, t in stored.items():
            if name == "lm_head.weight":
                continue
            if name.endswith("norm.weight"):
                t = t.float() + 1.0
            out.append((_map(tmap, name), t))
        notes.append("norm weights stored w+1 (exact: w is a multiple of 2^-10); query_pre_attn_scalar "
                     f"({cfg['query_pre_attn_scalar']}) has no GGUF key: transformers' GGUF loader assumes 256, "
                     "llama.cpp uses 1/sqrt(key_length) for this size")
        ftype_final = ftype
    elif arch == "phi3":
        n_embd = cfg["hidden_size"]
        rp = cfg["rope_parameters"]
        rope_dims = int(rp.get("partial_rotary_factor", 1.0) * n_embd) // H
        w.add_context_length(cfg["max_position_embeddings"])
        w.add_rope_scaling_orig_ctx_len(rp["original_max_position_embeddings"])
        w.add_embedding_length(n_embd)
        w.add_feed_forward_length(cfg["intermediate_size"])
        w.add_block_count(L)
        w.add_head_count(H)
        w.add_head_count_kv(KV)
        w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
        w.add_rope_dimension_count(rope_dims)
        w.add_rope_freq_base(rp["rope_theta"])
        w.add_sliding_window(cfg.get("sliding_window") or 0)
        if rp.get("long_factor"):
            scale = cfg["max_position_embeddings"] / rp["original_max_position_embeddings"]
            attn_factor = math.sqrt(1 + math.log(scale) / math.log(rp["original_max_position_embeddings"])) \
                if scale > 1.0 else 1.0
            w.add_rope_scaling_attn_factors(attn_factor)
            out.append(("rope_factors_long.weight", torch.tensor(rp["long_factor"], dtype=torch.float32)))
            out.append(("rope_factors_short.weight", torch.tensor(rp["short_factor"], dtype=torch.float32)))
        for name, t in stored.items():
            out.append((_map(tmap, name), t))
        ftype_final = ftype
    elif arch == "gptneox":
        n_embd = cfg["hidden_size"]
        w.add_context_length(cfg["max_position_embeddings"])
        w.add_embedding_length(n_embd)
        w.add_block_count(L)
        w.add_feed_forward_length(cfg["intermediate_size"])
        w.add_rope_dimension_count(int(cfg["rope_parameters"]["partial_rotary_factor"] * (n_embd // H)))
        w.add_head_count(H)
        w.add_parallel_residual(cfg.get("use_parallel_residual", True))
        w.add_layer_norm_eps(cfg["layer_norm_eps"])
        for name, t in stored.items():
            if name.endswith("attention.query_key_value.weight"):
                q = t.reshape(H, 3, n_embd // H, n_embd)
                t = torch.cat([q[:, 0].reshape(-1, n_embd), q[:, 1].reshape(-1, n_embd), q[:, 2].reshape(-1, n_embd)])
            elif name.endswith("attention.query_key_value.bias"):
                q = t.reshape(H, 3, n_embd // H)
                t = torch.cat([q[:, 0].reshape(-1), q[:, 1].reshape(-1), q[:, 2].reshape(-1)])
            out.append((_map(tmap, name), t))
        notes.append("attn_qkv weight and bias reordered from per-head [q|k|v] to [Q;K;V] blocks (llama.cpp)")
        ftype_final = ftype
    elif arch == "gpt-oss":
        common_keys(w, cfg)
        w.add_sliding_window(cfg["sliding_window"])
        w.add_expert_feed_forward_length(cfg["intermediate_size"])
        mx = fam["mxfp4_values"]  # name -> (values [E, N, K] f32): the experts, exact in MXFP4
        for name, t in stored.items():
            if name.endswith("sinks"):
                out.append((_map(tmap, name), t))
            elif name.endswith("experts.gate_up_proj_bias"):
                pfx = name[: -len("gate_up_proj_bias")]
                out.append((_map(tmap, pfx + "gate_proj.bias"), t[..., ::2]))
                out.append((_map(tmap, pfx + "up_proj.bias"), t[..., 1::2]))
            elif name.endswith("experts.down_proj_bias"):
                out.append((_map(tmap, name[: -len("_bias")] + ".bias"), t))
            elif name.endswith("experts.gate_up_proj"):
                v = mx[name]  # [E, 2I, H] = transpose of HF [E, H, 2I]
                assert torch.equal(v.transpose(1, 2), t.float())
                pfx = name[: -len("gate_up_proj")]
                out.append((_map(tmap, pfx + "gate_proj.weight"), ("MXFP4", v[:, ::2, :])))
                out.append((_map(tmap, pfx + "up_proj.weight"), ("MXFP4", v[:, 1::2, :])))
            elif name.endswith("experts.down_proj"):
                v = mx[name]  # [E, H, I]
                assert torch.equal(v.transpose(1, 2), t.float())
                out.append((_map(tmap, name + ".weight"), ("MXFP4", v)))
            else:
                out.append((_map(tmap, name), t))
        notes.append("experts MXFP4 (type 39, gguf.quants.quantize; dequantizes exactly to the HF weights); "
                     "gate/up de-interleaved from HF's gate_up_proj (::2 gate, 1::2 up); sinks blk.N.attn_sinks.weight")
        ftype_final = FT_MXFP4_MOE
    else:
        raise ValueError(arch)

    w.add_file_type(ftype_final)
    tok_info = gguf_tokenizer(w, tok_kind, hf_dir, V)
    types = {}
    intended = {}
    for gname, t in out:
        intended[gname] = (t[1] if isinstance(t, tuple) else t).detach().to(torch.float32).numpy()
        if isinstance(t, tuple) and t[0] == "MXFP4":
            vals = t[1].contiguous().numpy().astype(np.float32)
            q = gguf.quants.quantize(vals, gguf.GGMLQuantizationType.MXFP4)
            back = gguf.quants.dequantize(q, gguf.GGMLQuantizationType.MXFP4)
            assert np.array_equal(back.reshape(vals.shape), vals), gname
            w.add_tensor(gname, q, raw_dtype=gguf.GGMLQuantizationType.MXFP4)
            types[gname] = "MXFP4"
        else:
            types[gname] = add_tensor(w, gname, t, mat_dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    # Read the file back: every tensor, dequantized, must equal what was meant to be written (rounded to
    # its storage type), with numpy shape = reversed ggml ne.
    worst = 0.0
    for t in gguf.GGUFReader(path).tensors:
        want = intended[t.name]
        got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(want.shape)
        if t.tensor_type == gguf.GGMLQuantizationType.F16:
            want = want.astype(np.float16).astype(np.float32)
        elif t.tensor_type == gguf.GGMLQuantizationType.BF16:
            want = torch.from_numpy(want).to(torch.bfloat16).float().numpy()
        assert list(reversed([int(x) for x in t.shape])) == list(want.shape), t.name
        worst = max(worst, float(np.abs(got.astype(np.float32) - want).max()) if want.size else 0.0)
    assert worst == 0.0, f"GGUF read-back differs by {worst}"
    return {"tensor_types": types, "notes": notes, "tokenizer": tok_info,
            "read_back_check": "every tensor read back with gguf.GGUFReader and dequantized equals the written "
                               "values exactly"}


# ---- verification of a GGUF through transformers' GGUF loader -------------------------------------


def verify_gguf(fam, gguf_path, hf_dir, seqs, cfg_json):
    """Loads the GGUF with transformers and compares with the HF folder (possibly with a config override
    describing what transformers' GGUF loader cannot read). Returns the record for reference.json."""
    v = fam.get("verify")
    if v is None:
        return {"verified_with_transformers": False, "why": fam.get("verify_why", "transformers has no GGUF loader "
                                                                                  "for this architecture")}
    gguf_kw, hf_kw, why = v
    if callable(gguf_kw):
        gguf_kw = gguf_kw(cfg_json)
    g = load_gguf(gguf_path, **gguf_kw)
    h = load_hf(hf_dir, **hf_kw)
    dl = max_logit_diff(g, h, seqs)
    da = max_attn_diff(g, h, seqs)
    print(f"  {fam['name']}: GGUF (transformers) vs safetensors: max |logit diff| {dl:.3g}, "
          f"max |attention diff| {da:.3g}", file=sys.stderr)
    assert dl <= 1e-5, f"{fam['name']}: GGUF logits differ by {dl}"
    return {"verified_with_transformers": True, "max_abs_logit_diff": dl, "max_abs_attention_diff": da,
            "gguf_load_overrides": {k: repr(x) for k, x in gguf_kw.items()},
            "hf_load_overrides": {k: repr(x) for k, x in hf_kw.items()}, "how": why}


FAMILIES = [
    dict(name="llama", tok="llama3", vocab=400, dtype=torch.float32, gguf_arch="llama",
         config=lambda V, t: cfg_llama(V, t, {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                                               "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                               "original_max_position_embeddings": 64}),
         features=["GQA 4/2", "rope llama3 (factor 8, low 1, high 4, original 64: dims 0 kept, 1-2 blended, "
                   "3-7 divided)", "untied output", "GGUF rope_freqs.weight (inv = inv_default / rope_freqs)",
                   "GGUF Q/K permuted"],
         verify=({}, {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}},
                 "transformers' GGUF loader ignores rope_freqs and runs default RoPE, so the GGUF is compared "
                 "with the HF folder loaded with default RoPE (checks every tensor and the permute; the "
                 "llama3 frequencies themselves are checked only by the HF reference)")),
    dict(name="llama_yarn", tok="llama3", vocab=400, dtype=torch.float32, gguf_arch=None,
         config=lambda V, t: cfg_llama(V, t, {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 8.0,
                                               "original_max_position_embeddings": 16, "beta_fast": 32.0,
                                               "beta_slow": 1.0}, tied=True),
         features=["rope yarn (factor 8 = max_position 128 / original 16, attention_factor default 0.1 ln 8 + 1, truncate default)", "tied embeddings"]),
    dict(name="llama_linear", tok="llama3", vocab=400, dtype=torch.float32, gguf_arch=None,
         config=lambda V, t: cfg_llama(V, t, {"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}, tied=True),
         features=["rope linear (factor 2)", "tied embeddings"]),
    dict(name="mistral", tok="spm", vocab=420, dtype=torch.float32, gguf_arch="llama", config=cfg_mistral,
         features=["sliding_window 8 on every layer (sequence 22 > 8)", "GQA 4/2", "SPM tokenizer with <s>",
                   "GGUF arch llama, Q/K permuted, no window key (llama.cpp writes none)"],
         verify=({}, {"sliding_window": None},
                 "the GGUF (arch llama, no window) is loaded as LlamaForCausalLM and compared with the HF "
                 "folder loaded with sliding_window=None; gguf_logits below are that full-attention model's"),
         gguf_reference={"sliding_window": None}),
    dict(name="qwen2", tok="qwen2", vocab=400, dtype=torch.bfloat16, gguf_arch="qwen2", config=cfg_qwen2,
         features=["q/k/v biases", "use_sliding_window, max_window_layers 1: layer 0 full, layer 1 sliding 8",
                   "tied embeddings (no lm_head / output.weight)", "stored bf16 (HF and GGUF matrices)",
                   "Qwen2 tokenizer (NFC, Split regex, no BOS)"],
         verify=({}, {"layer_types": ["full_attention", "full_attention"], "use_sliding_window": False,
                      "sliding_window": None},
                 "the GGUF has no window (llama.cpp writes none for qwen2); compared with the HF folder loaded "
                 "with full attention; gguf_logits below are that model's"),
         gguf_reference={"layer_types": ["full_attention", "full_attention"], "use_sliding_window": False,
                         "sliding_window": None}),
    dict(name="qwen3", tok="qwen2", vocab=400, dtype=torch.float32, gguf_arch="qwen3", config=cfg_qwen3,
         features=["q_norm/k_norm per head before RoPE", "head_dim 32 explicit (!= hidden/heads = 16)",
                   "no biases", "GGUF attention.key_length 32"],
         verify=({"head_dim": 32}, {},
                 "transformers reads no head_dim from a qwen3 GGUF (it would use 128), so head_dim=32 is passed "
                 "to from_pretrained; everything else comes from the GGUF")),
    dict(name="gemma3", tok="gemma", vocab=420, dtype=torch.float32, gguf_arch="gemma3", config=cfg_gemma3,
         features=["6 layers: 5 sliding (window 8) + 1 full", "query_pre_attn_scalar 256 != head_dim 16",
                   "final_logit_softcapping 3 (logits up to ~4 before capping)", "rope_theta 1e6 full / 1e4 sliding",
                   "norms x(1+w) with random w; GGUF stores w+1", "q_norm/k_norm", "sandwich norms",
                   "tied embeddings, embeddings x sqrt(hidden)", "SPM-style tokenizer, byte fallback, <bos>"],
         verify=({"final_logit_softcapping": 3.0}, {},
                 "transformers' GGUF loader reads no final_logit_softcapping (passed explicitly); its fixed "
                 "query_pre_attn_scalar 256, local theta 1e4 and pattern 6 match this config")),
    dict(name="gpt_oss", tok="o200k", vocab=400, dtype=torch.bfloat16, gguf_arch="gpt-oss", config=cfg_gpt_oss,
         features=["learned sinks (sink_share = 1 - row sum)", "4 layers alternate sliding 8 / full",
                   "MoE 4 experts top-2, router bias, expert biases, swiglu clamp 7 alpha 1.702",
                   "rope yarn factor 32, original 16, truncate false", "q/k/v/o biases",
                   "experts exactly MXFP4-representable: hf/ (bf16, experts included) and hf_mxfp4/ (bf16, experts "
                   "as MXFP4 blocks/scales, as the released checkpoints) hold the same weights",
                   "GGUF: experts MXFP4, other matrices BF16"],
         verify_why="transformers cannot load a gpt-oss GGUF (sinks and experts unmapped; MODELS.md)"),
    dict(name="phi3", tok="spm_phi3", vocab=424, dtype=torch.float16, gguf_arch="phi3", config=cfg_phi3,
         features=["fused qkv_proj and gate_up_proj", "partial_rotary_factor 0.5 (8 of 16 dims)",
                   "rope longrope, original 16, max 64: long factors for the 22-token sequence, short for "
                   "the 9-token one (whole sequence), attention_factor sqrt(1 + ln 4 / ln 16)",
                   "stored f16 (HF and GGUF matrices)", "GGUF rope_factors_long/short"],
         verify=(lambda c: {"rope_parameters": c["rope_parameters"],
                            "original_max_position_embeddings": c["original_max_position_embeddings"]}, {},
                 "transformers' phi3 GGUF loader reads neither partial rotary nor longrope factors, so the HF "
                 "config's rope_parameters (longrope, partial_rotary_factor 0.5, factors) and "
                 "original_max_position_embeddings are passed to from_pretrained; weights and the rest come "
                 "from the GGUF")),
    dict(name="gpt_neox", tok="neox", vocab=400, dtype=torch.float16, gguf_arch="gptneox", config=cfg_gpt_neox,
         features=["LayerNorm with bias", "parallel residual", "rotary 25% (4 of 16 dims)", "all linears biased",
                   "gelu (erf)", "stored f16 like the Pythia checkpoints", "GGUF attn_qkv reordered to [Q;K;V]"],
         verify_why="transformers has no gptneox GGUF loader"),
    dict(name="olmo2", tok="olmo2", vocab=400, dtype=torch.float32, gguf_arch="olmo2", config=cfg_olmo2,
         features=["post-norms only (no pre-norms)", "q_norm over all heads (H*d), k_norm over KV*d",
                   "GQA 4/2"], verify_why="transformers has no olmo2 GGUF loader"),
]


# ---------------------------------------------------------------------------------------------
# Driver


def encode_prefix(tok, text, n):
    ids = tok.encode(text).ids
    assert len(ids) >= n, (text, len(ids), n)
    return ids[:n]


def tokenizer_record(kind, tok, hf_dir):
    rec = {"kind": kind, "vocab_size": tok.get_vocab_size(), "cases": []}
    try:
        auto = transformers.AutoTokenizer.from_pretrained(hf_dir)
    except Exception as e:  # noqa: BLE001 - recorded, not fatal
        auto = None
        rec["auto_tokenizer_error"] = repr(e)
    for text in TOKENIZER_CASES:
        ids = tok.encode(text).ids
        case = {"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)}
        if auto is not None:
            case["auto_tokenizer_ids"] = auto(text)["input_ids"]
        rec["cases"].append(case)
    if auto is not None:
        rec["auto_tokenizer_class"] = type(auto).__name__
        rec["auto_tokenizer_agrees"] = all(c["ids"] == c["auto_tokenizer_ids"] for c in rec["cases"])
    return rec


def mxfp4_folder(model, hf_dir, out_dir, mx):
    """hf_mxfp4/: the gpt-oss experts as *_blocks / *_scales (u8), everything else as in hf/."""
    os.makedirs(out_dir, exist_ok=True)
    stored = safetensors.torch.load_file(os.path.join(hf_dir, "model.safetensors"))
    tensors = {}
    for name, t in stored.items():
        if name.endswith("experts.gate_up_proj") or name.endswith("experts.down_proj"):
            blocks, scales = mx[name + ":packed"]
            tensors[name + "_blocks"] = blocks
            tensors[name + "_scales"] = scales
        else:
            tensors[name] = t
    safetensors.torch.save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    cfg = json.load(open(os.path.join(hf_dir, "config.json")))
    cfg["quantization_config"] = {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    for extra in ("generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        if os.path.exists(os.path.join(hf_dir, extra)):
            shutil.copy(os.path.join(hf_dir, extra), os.path.join(out_dir, extra))


def make_family(fam, idx, root, versions):
    name = fam["name"]
    print(f"== {name}", file=sys.stderr)
    out_dir = os.path.join(root, name)
    shutil.rmtree(out_dir, ignore_errors=True)
    hf_dir = os.path.join(out_dir, "hf")
    os.makedirs(hf_dir)
    gen = torch.Generator().manual_seed(SEED + idx)
    torch.manual_seed(SEED + idx)
    tok, tcfg = build_tokenizer(fam["tok"], fam["vocab"])
    V = tok.get_vocab_size()
    config = fam["config"](V, tok)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    randomize(model, gen, gemma=(name == "gemma3"))
    mx = {}
    if name == "gpt_oss":
        with torch.no_grad():
            for li, layer in enumerate(model.model.layers):
                ex = layer.mlp.experts
                E, Hd, I2 = ex.gate_up_proj.shape
                b, s, v = make_mxfp4_weights(gen, E, I2, Hd)  # [E, 2I, H]
                ex.gate_up_proj.copy_(v.transpose(1, 2))
                key = f"model.layers.{li}.mlp.experts.gate_up_proj"
                mx[key], mx[key + ":packed"] = v, (b, s)
                E, I, Hd = ex.down_proj.shape
                b, s, v = make_mxfp4_weights(gen, E, Hd, I)  # [E, H, I]
                ex.down_proj.copy_(v.transpose(1, 2))
                key = f"model.layers.{li}.mlp.experts.down_proj"
                mx[key], mx[key + ":packed"] = v, (b, s)
    model = model.to(fam["dtype"])
    model.save_pretrained(hf_dir)
    save_tokenizer(tok, tcfg, hf_dir)
    assert os.path.exists(os.path.join(hf_dir, "model.safetensors"))

    seqs = [encode_prefix(tok, TEXT_LONG, SEQ_LEN), encode_prefix(tok, TEXT_SHORT, SHORT_LEN)]
    ref = load_hf(hf_dir)
    cfg_json = json.load(open(os.path.join(hf_dir, "config.json")))
    doc = {
        "description": f"tiny random {name}: transformers float32 eager reference from the stored weights "
                       f"(see tools/make_family_models.py)",
        "family": name,
        "versions": versions,
        "seed": SEED + idx,
        "storage_dtype": str(fam["dtype"]).replace("torch.", ""),
        "features": fam["features"],
        "config": cfg_json,
        "layer_types": getattr(ref.config, "layer_types", None),
        "texts": {"sequence0": TEXT_LONG + f" (first {SEQ_LEN} ids)", "sequence1": TEXT_SHORT + f" (first {SHORT_LEN} ids)"},
        "greedy_note": f"{NUM_GREEDY} argmax steps, each rerunning the whole sequence (use_cache=False); EOS does "
                       "not stop it",
        "attention_note": "attentions[layer][head][query][key]: eager post-softmax probabilities",
        "tokenizer": tokenizer_record(fam["tok"], tok, hf_dir),
    }
    if name == "gpt_oss":
        mxdir = os.path.join(out_dir, "hf_mxfp4")
        mxfp4_folder(model, hf_dir, mxdir, mx)
        try:
            mref = load_hf(mxdir)
            d = max_logit_diff(mref, ref, seqs)
            print(f"  gpt_oss: hf_mxfp4 (transformers, dequantized) vs hf: max |logit diff| {d:.3g}", file=sys.stderr)
            assert d <= 1e-5, d
            doc["hf_mxfp4"] = {"verified_with_transformers": True, "max_abs_logit_diff": d,
                               "quantization_config": json.load(open(os.path.join(mxdir, "config.json")))["quantization_config"]}
        except Exception as e:  # noqa: BLE001
            doc["hf_mxfp4"] = {"verified_with_transformers": False, "error": repr(e)}
            print(f"  gpt_oss: hf_mxfp4 could not be loaded by transformers: {e!r}", file=sys.stderr)
    doc["sequences"] = run_reference(ref, seqs, sinks=(name == "gpt_oss"))

    if fam.get("gguf_arch"):
        path = os.path.join(out_dir, "model.gguf")
        info = write_gguf(path, dict(fam, mxfp4_values=mx), hf_dir, cfg_json, fam["tok"], V)
        keys, tensors = gguf_keys_summary(path)
        info["keys"] = keys
        info["tensors"] = tensors
        info["file"] = "model.gguf"
        info["verification"] = verify_gguf(fam, path, hf_dir, seqs, cfg_json)
        rp = cfg_json.get("rope_parameters") or {}
        if rp.get("rope_type") == "llama3":
            hd = cfg_json["head_dim"]
            inv_default = 1.0 / (rp["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
            factors = torch.from_numpy(gguf.GGUFReader(path).get_tensor(0).data.copy())
            hf_inv = ref.model.rotary_emb.inv_freq.float()
            d = float(((inv_default / factors) - hf_inv).abs().max() / hf_inv.abs().max())
            print(f"  rope_freqs: inv_default / rope_freqs vs transformers' llama3 inv_freq: max rel diff {d:.3g}",
                  file=sys.stderr)
            assert d < 1e-6, d
            info["rope_freqs_check"] = {"rope_freqs": [f8(x) for x in factors], "hf_inv_freq": nested(hf_inv),
                                        "max_rel_diff_inv_default_over_rope_freqs_vs_hf": d}
        if fam.get("gguf_reference"):
            gref = load_hf(hf_dir, **fam["gguf_reference"])
            info["gguf_reference_note"] = ("gguf_sequences: the reference for what the GGUF encodes (HF folder "
                                           f"loaded with {fam['gguf_reference']})")
            info["gguf_sequences"] = [{k: e[k] for k in ("input_ids", "logits", "argmax_ids", "argmax_margin",
                                                          "greedy_ids")} for e in run_reference(gref, seqs)]
        doc["gguf"] = info
    else:
        doc["gguf"] = None
    compact_dump(doc, os.path.join(out_dir, "reference.json"))
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(out_dir) for f in fs)
    print(f"  wrote {out_dir} ({size} bytes; reference.json "
          f"{os.path.getsize(os.path.join(out_dir, 'reference.json'))})", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="tests/data/families")
    ap.add_argument("--only", default="", help="comma-separated families (default: all, and the traced model)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "tokenizers": tokenizers.__version__, "gguf": importlib.metadata.version("gguf"),
                "safetensors": importlib.metadata.version("safetensors"), "numpy": np.__version__}
    only = [s for s in args.only.split(",") if s]
    os.makedirs(args.out, exist_ok=True)
    for idx, fam in enumerate(FAMILIES):
        if not only or fam["name"] in only:
            make_family(fam, idx, args.out, versions)
    if not only or "traced" in only:
        make_traced(args.out, versions)



# ---------------------------------------------------------------------------------------------
# Traced generic model


class GenericWrapper(torch.nn.Module):
    """forward(input_ids [1, T]) -> (logits [1, T, V], (attn_layer0 [1, H, T, T], ...)): the output shape
    SinkScope's generic TorchScript loader reads (findLogits / collectAttention in core/src/model/model.cpp)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        out = self.model(input_ids=input_ids, output_attentions=True, use_cache=False, return_dict=True)
        return out.logits, tuple(out.attentions)


def make_traced(root, versions):
    print("== traced", file=sys.stderr)
    out_dir = os.path.join(root, "traced")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    idx = len(FAMILIES)
    gen = torch.Generator().manual_seed(SEED + idx)
    torch.manual_seed(SEED + idx)
    tok, _ = build_tokenizer("llama3", 400)
    V = tok.get_vocab_size()
    config = cfg_llama(V, tok, {"rope_type": "default", "rope_theta": 10000.0})
    config._attn_implementation = "eager"
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32,
                                                          attn_implementation="eager").eval()
    randomize(model, gen)
    wrapper = GenericWrapper(model).eval()
    seqs = [encode_prefix(tok, TEXT_LONG, SEQ_LEN), encode_prefix(tok, TEXT_SHORT, SHORT_LEN)]
    example = torch.tensor([seqs[0]])
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, (example,), check_trace=False, strict=False)
    path = os.path.join(out_dir, "llama_traced.pt")
    traced.save(path)
    loaded = torch.jit.load(path)
    entries = []
    worst = 0.0
    with torch.no_grad():
        for ids in seqs + [seqs[0][:5]]:
            x = torch.tensor([ids])
            lt, at = loaded(x)
            le, ae = wrapper(x)
            d = max(float((lt - le).abs().max()), max(float((a - b).abs().max()) for a, b in zip(at, ae)))
            worst = max(worst, d)
            assert lt.shape == (1, len(ids), V) and all(a.shape == (1, 4, len(ids), len(ids)) for a in at)
        for ids in seqs:
            x = torch.tensor([ids])
            lt, at = loaded(x)
            entries.append({"input_ids": ids, "logits": nested(lt[0]), "argmax_ids": lt[0].argmax(-1).tolist(),
                            "attentions": nested(torch.stack([a[0] for a in at]))})
    print(f"  traced vs eager wrapper (T = {SEQ_LEN}, {SHORT_LEN}, 5): max diff {worst:.3g}", file=sys.stderr)
    assert worst <= 1e-5, f"the traced module does not generalise over T ({worst})"
    doc = {"description": "tiny random Llama (2 layers, 4 heads / 2 KV, hidden 64, vocab 400, default RoPE), "
                          "torch.jit.trace of GenericWrapper: forward(input_ids [1, T] int64) -> (logits [1, T, V], "
                          "(attn_layer0 [1, H, T, T], attn_layer1 [1, H, T, T])), float32, eager attention; traced "
                          f"at T={SEQ_LEN} and checked at T={SEQ_LEN}, {SHORT_LEN} and 5 against the untraced module",
           "versions": versions, "seed": SEED + idx, "file": "llama_traced.pt",
           "config": json.loads(model.config.to_json_string()), "traced_vs_eager_max_abs_diff": worst,
           "sequences": entries}
    compact_dump(doc, os.path.join(out_dir, "reference.json"))
    print(f"  wrote {out_dir} (llama_traced.pt {os.path.getsize(path)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
