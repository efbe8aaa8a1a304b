#!/usr/bin/env python3
"""Writes the binary and generated seeds of the fuzz corpora (tests/fuzz/corpus): tiny GGUF files (a
metadata key of every type, a byte-level and a SentencePiece-style tokenizer, one tensor of each
dequantized type), a safetensors file, small tokenizer.json files cut from the test fixtures and archive
tokenizer JSON. Deterministic: rerunning gives the same bytes. Usage: tools/make_fuzz_seeds.py"""
import json
import os
import struct

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(REPO, "tests", "fuzz", "corpus")

# GGUF value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?", U64: "<Q",
          I64: "<q", F64: "<d"}


def gguf_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gguf_value(vtype, value):
    if vtype == STR:
        return gguf_str(value)
    if vtype == ARR:
        etype, items = value
        out = struct.pack("<IQ", etype, len(items))
        return out + b"".join(gguf_value(etype, v) for v in items)
    return struct.pack(SCALAR[vtype], value)


# ggml type: (number, elements per block, bytes per block)
TENSOR_TYPES = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q5_0": (6, 32, 22),
                "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84), "Q3_K": (11, 256, 110),
                "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210), "BF16": (30, 1, 2),
                "MXFP4": (39, 32, 17)}


def block_bytes(n, seed):
    # Small fp16 scales (0x3c00 = 1.0) at the front of each block keep the values finite; the rest varies.
    return bytes(((i * 37 + seed * 11) & 0x7F) if i % 2 else 0x3C for i in range(n))


def gguf(metadata, tensors, alignment=32):
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for key, vtype, value in metadata:
        out += gguf_str(key) + struct.pack("<I", vtype) + gguf_value(vtype, value)
    data = b""
    infos = b""
    for name, tname, ne in tensors:
        number, per_block, nbytes = TENSOR_TYPES[tname]
        count = 1
        for n in ne:
            count *= n
        raw = block_bytes(count // per_block * nbytes, len(data))
        data += b"\0" * ((-len(data)) % alignment)
        infos += gguf_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        infos += struct.pack("<IQ", number, len(data))
        data += raw
    out += infos
    out += b"\0" * ((-len(out)) % alignment)
    return out + data


def byte_alphabet():
    # GPT-2's bytes_to_unicode.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def gpt2_vocab():
    alphabet = byte_alphabet()
    tokens = [alphabet[b] for b in range(256)]
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a")]
    for a, b in merges:
        tokens.append(a + b)
    tokens += ["<|endoftext|>", "<|im_start|>"]
    types = [1] * (len(tokens) - 2) + [3, 3]
    return tokens, types, merges


def spm_vocab():
    pieces = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    words = ["▁", "t", "h", "e", "a", "▁t", "he", "▁the", "c", "▁c", "at", "▁cat"]
    tokens = pieces + words
    types = [2, 3, 3] + [6] * 256 + [1] * len(words)
    scores = [0.0] * len(pieces) + [-float(i) for i in range(len(words))]
    return tokens, types, scores


def write(name, data):
    path = os.path.join(CORPUS, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def main():
    tokens, types, merges = gpt2_vocab()
    gpt2_meta = [
        ("general.architecture", STR, "llama"),
        ("general.alignment", U32, 32),
        ("llama.block_count", U32, 2),
        ("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
        ("tokenizer.ggml.model", STR, "gpt2"),
        ("tokenizer.ggml.pre", STR, "smollm"),
        ("tokenizer.ggml.tokens", ARR, (STR, tokens)),
        ("tokenizer.ggml.token_type", ARR, (I32, types)),
        ("tokenizer.ggml.merges", ARR, (STR, [a + " " + b for a, b in merges])),
        ("tokenizer.ggml.bos_token_id", U32, len(tokens) - 2),
        ("tokenizer.ggml.eos_token_id", U32, len(tokens) - 2),
        ("tokenizer.ggml.add_bos_token", BOOL, False),
    ]
    write("tokenizer_gguf/gpt2.gguf", gguf(gpt2_meta, []))
    spm_tokens, spm_types, spm_scores = spm_vocab()
    spm_meta = [
        ("general.architecture", STR, "llama"),
        ("tokenizer.ggml.model", STR, "llama"),
        ("tokenizer.ggml.tokens", ARR, (STR, spm_tokens)),
        ("tokenizer.ggml.token_type", ARR, (I32, spm_types)),
        ("tokenizer.ggml.scores", ARR, (F32, spm_scores)),
        ("tokenizer.ggml.bos_token_id", U32, 1),
        ("tokenizer.ggml.eos_token_id", U32, 2),
        ("tokenizer.ggml.unknown_token_id", U32, 0),
        ("tokenizer.ggml.add_bos_token", BOOL, True),
        ("tokenizer.ggml.add_space_prefix", BOOL, True),
    ]
    write("tokenizer_gguf/spm.gguf", gguf(spm_meta, []))
    write("tokenizer_gguf/gemma.gguf", gguf([("general.architecture", STR, "gemma3")] + spm_meta[1:], []))

    every_type = [
        ("u8", U8, 7), ("i8", I8, -7), ("u16", U16, 700), ("i16", I16, -700), ("u32", U32, 70000),
        ("i32", I32, -70000), ("f32", F32, 0.5), ("bool", BOOL, True), ("str", STR, "text"),
        ("u64", U64, 1 << 40), ("i64", I64, -(1 << 40)), ("f64", F64, 0.25),
        ("arr.f32", ARR, (F32, [1.0, 2.0])), ("arr.str", ARR, (STR, ["a", "b"])),
        ("arr.nested", ARR, (ARR, [(U8, [1, 2]), (U8, [3])])),
    ]
    write("gguf/metadata.gguf", gguf([("general.architecture", STR, "llama")] + every_type, []))
    plain = [("t.f32", "F32", [8, 2]), ("t.f16", "F16", [8]), ("t.bf16", "BF16", [8])]
    write("gguf/plain.gguf", gguf([("general.architecture", STR, "llama")], plain))
    small = [("t." + t.lower(), t, [32]) for t in ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "MXFP4")]
    write("gguf/blocks32.gguf", gguf([("general.architecture", STR, "llama")], small))
    kquants = [("t." + t.lower(), t, [256]) for t in ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")]
    write("gguf/kquants.gguf", gguf([("general.alignment", U32, 64)], kquants, alignment=64))
    # dequant: type byte, then whole blocks.
    for tname, (number, per_block, nbytes) in TENSOR_TYPES.items():
        write("dequant/" + tname.lower(), bytes([number]) + block_bytes(nbytes * (2 if per_block > 1 else 8), number))

    # safetensors: F32, F16, BF16, I64, U8 and a scalar, with __metadata__.
    entries, payload = {}, b""
    for name, dtype, shape, size in [("w.f32", "F32", [2, 2], 4), ("w.f16", "F16", [3], 2), ("w.bf16", "BF16", [2], 2),
                                     ("w.i64", "I64", [1], 8), ("w.u8", "U8", [2, 3], 1), ("s", "F32", [], 4)]:
        n = 1
        for d in shape:
            n *= d
        raw = block_bytes(n * size, len(payload))
        entries[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(payload), len(payload) + len(raw)]}
        payload += raw
    entries["__metadata__"] = {"format": "pt"}
    header = json.dumps(entries, separators=(",", ":")).encode()
    header += b" " * ((-len(header)) % 8)
    write("safetensors/mixed.safetensors", struct.pack("<Q", len(header)) + header + payload)

    # tokenizer.json: the fixtures cut to their first 300 tokens and the merges among them.
    for family in ("llama3", "mistral", "neox", "gemma", "qwen2"):
        with open(os.path.join(REPO, "tests", "data", "tokenizer", family, "tokenizer.json"), encoding="utf-8") as f:
            tj = json.load(f)
        keep = {t: i for t, i in tj["model"]["vocab"].items() if i < 300}
        kept_merges = []
        for m in tj["model"]["merges"]:
            a, b = m if isinstance(m, list) else m.split(" ", 1)
            if a in keep and b in keep and a + b in keep:
                kept_merges.append(m)
        tj["model"]["vocab"] = keep
        tj["model"]["merges"] = kept_merges[:40]
        tj["added_tokens"] = [t for t in tj.get("added_tokens", []) if t["id"] < 300]
        write("tokenizer_json/" + family + ".json", json.dumps(tj, ensure_ascii=False, separators=(",", ":")))

    # Archive tokenizer JSON (Tokenizer::toJson's keys, version 2).
    write("tokenizer_archive/gpt2.json", json.dumps({
        "version": 2, "model": "gpt2", "pre": "smollm", "tokens": tokens, "types": types, "scores": [],
        "merges": [[a, b] for a, b in merges], "bosId": len(tokens) - 2, "eosId": len(tokens) - 2, "unkId": None,
        "padId": None, "addBos": False, "addEos": False, "addSpacePrefix": True, "byteFallback": False,
        "fuseUnk": False}, ensure_ascii=False))
    write("tokenizer_archive/llama.json", json.dumps({
        "version": 2, "model": "llama", "pre": "default", "tokens": spm_tokens, "types": spm_types,
        "scores": spm_scores, "merges": [["▁", "t"], ["h", "e"], ["▁t", "he"], ["a", "t"], ["▁", "c"], ["▁c", "at"]],
        "bosId": 1, "eosId": 2, "unkId": 0, "padId": None, "addBos": True, "addEos": False, "addSpacePrefix": True,
        "byteFallback": True, "fuseUnk": True}, ensure_ascii=False))

    # Round trip: plain, multilingual and broken UTF-8 text, special-token spellings.
    write("tokenizer_roundtrip/english", "The cat sat on the mat. It's 2024!\n\n  Done.\t")
    write("tokenizer_roundtrip/multilingual", "café naïve 你好 こんにちは 😀 Ünïcödé")
    write("tokenizer_roundtrip/bytes", bytes(range(256)))
    write("tokenizer_roundtrip/special", "<|begin_of_text|>hi<|end_of_text|> <|eot_id|>x<|endoftext|>")


if __name__ == "__main__":
    main()
