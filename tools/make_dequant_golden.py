#!/usr/bin/env python3
"""Writes golden data for tests/core/format/dequant_test.cpp.

For every tensor type SinkScope dequantizes, this makes a few blocks of random raw bytes (with the
fp16 scale fields replaced by finite, moderate values so every output is finite) and dequantizes them
with gguf-py's numpy reference (gguf.quants.dequantize), which mirrors ggml's dequantize_row_*.

Output, under tests/data/dequant/:
  <type>.raw   the raw GGUF bytes (whole blocks)
  <type>.f32   the expected values, little-endian float32, one per element
  MANIFEST     one line per type: "<type> <elements> <raw bytes>", and how the data was made

MXFP4 also comes in the Hugging Face layout (gpt-oss `*_blocks` u8 [E, N, G, 16] and `*_scales` u8
[E, N, G], G = K/32), dequantized by transformers' own convert_moe_packed_tensors in float32:
  mxfp4_hf.blocks, mxfp4_hf.scales   the raw u8 arrays
  mxfp4_hf.f32                       transformers' result, [E, K, N] (already transposed), float32

The output is deterministic (fixed seed), so rerunning it must not change any file. Run from the
repository root with the reference environment:

    /work/refenv/bin/python tools/make_dequant_golden.py
"""

from __future__ import annotations

import importlib.metadata
import pathlib
import sys

import numpy as np
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T
from gguf.quants import dequantize

SEED = 20240607
OUT_DIR = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "dequant"

# Byte offsets of the fp16 scale fields inside one block (see ggml-common.h block_* structs).
HALF_FIELDS: dict[T, list[int]] = {
    T.Q4_0: [0],        # d
    T.Q4_1: [0, 2],     # d, m
    T.Q5_0: [0],        # d
    T.Q5_1: [0, 2],     # d, m
    T.Q8_0: [0],        # d
    T.Q2_K: [80, 82],   # d, dmin after scales[16] and qs[64]
    T.Q3_K: [108],      # d after hmask[32], qs[64], scales[12]
    T.Q4_K: [0, 2],     # d, dmin
    T.Q5_K: [0, 2],     # d, dmin
    T.Q6_K: [208],      # d after ql[128], qh[64], scales[16]
}

# E8M0 scale bytes: moderate exponents, plus the subnormal (0, 1) and large (250) corners. 255 and the
# top of the range would overflow the largest code point to inf, which the finite check refuses.
MXFP4_EDGE_SCALES = [0, 1, 2, 127, 250]

# Shape of the Hugging Face MXFP4 case: E experts, N output rows, G groups of 32 inputs (all odd or small
# so a transposed or mis-strided read cannot pass). tests/core/format/dequant_test.cpp repeats it.
HF_E, HF_N, HF_G = 2, 5, 3

# Blocks per quantized type: enough to cover every sub-block layout several times, small on disk.
BLOCKS_32 = 8   # 32-element block types
BLOCKS_256 = 3  # k-quants


def random_halves(rng: np.random.Generator, n: int) -> np.ndarray:
    """fp16 scales in +-[1e-3, 4], random sign: finite and far from overflow."""
    mag = np.exp(rng.uniform(np.log(1e-3), np.log(4.0), size=n))
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return (mag * sign).astype(np.float16)


def e8m0_scales(rng: np.random.Generator, n: int) -> np.ndarray:
    scales = rng.integers(100, 151, size=n, dtype=np.uint8)
    scales[:len(MXFP4_EDGE_SCALES)] = MXFP4_EDGE_SCALES
    return scales


def quantized_bytes(rng: np.random.Generator, qtype: T) -> bytes:
    block_elems, block_bytes = GGML_QUANT_SIZES[qtype]
    n_blocks = BLOCKS_256 if block_elems == 256 else BLOCKS_32
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    if qtype == T.MXFP4:
        raw[:, 0] = e8m0_scales(rng, n_blocks)  # block_mxfp4 { uint8 e; uint8 qs[16]; }
    for off in HALF_FIELDS.get(qtype, []):
        raw[:, off:off + 2] = random_halves(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return raw.tobytes()


# Values every half/bfloat16 decoder must get right: signed zeros, subnormals, extremes, infinities.
F16_SPECIALS = [0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00, 0xbc00, 0x7bff, 0xfbff, 0x7c00, 0xfc00,
                0x3555, 0x0200]
BF16_SPECIALS = [0x0000, 0x8000, 0x0001, 0x807f, 0x0080, 0x3f80, 0xbf80, 0x7f7f, 0xff7f, 0x7f80, 0xff80, 0x3eaa]


def plain_bytes(rng: np.random.Generator, qtype: T) -> bytes:
    n = 256
    if qtype == T.F32:
        vals = (rng.standard_normal(n) * np.exp(rng.uniform(-20, 20, n))).astype(np.float32)
        vals[:4] = [0.0, -0.0, np.float32(1e-45), np.finfo(np.float32).max]
        return vals.tobytes()
    if qtype == T.F16:
        bits = rng.integers(0, 0x10000, size=n, dtype=np.uint32).astype(np.uint16)
        bits[(bits & 0x7c00) == 0x7c00] &= 0xbfff  # no random NaN/inf: specials cover them
        bits[:len(F16_SPECIALS)] = F16_SPECIALS
        return bits.tobytes()
    if qtype == T.BF16:
        bits = rng.integers(0, 0x10000, size=n, dtype=np.uint32).astype(np.uint16)
        bits[(bits & 0x7f80) == 0x7f80] &= 0xbfff
        bits[:len(BF16_SPECIALS)] = BF16_SPECIALS
        return bits.tobytes()
    raise AssertionError(qtype)


def write_mxfp4_hf(rng: np.random.Generator) -> str:
    import torch
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors

    blocks = rng.integers(0, 256, size=(HF_E, HF_N, HF_G, 16), dtype=np.uint8)
    scales = e8m0_scales(rng, HF_E * HF_N * HF_G).reshape(HF_E, HF_N, HF_G)
    out = convert_moe_packed_tensors(torch.from_numpy(blocks), torch.from_numpy(scales), dtype=torch.float32)
    out = out.numpy()
    assert out.shape == (HF_E, HF_G * 32, HF_N), out.shape
    assert np.all(np.isfinite(out))
    (OUT_DIR / "mxfp4_hf.blocks").write_bytes(blocks.tobytes())
    (OUT_DIR / "mxfp4_hf.scales").write_bytes(scales.tobytes())
    (OUT_DIR / "mxfp4_hf.f32").write_bytes(np.ascontiguousarray(out).astype("<f4").tobytes())
    return (f"MXFP4_HF {out.size} {blocks.nbytes + scales.nbytes}  # E={HF_E} N={HF_N} G={HF_G}, "
            f"output [E, K, N]; transformers {importlib.metadata.version('transformers')}, "
            f"torch {torch.__version__}")


def main() -> int:
    rng = np.random.default_rng(SEED)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    # New types go at the end so the draws for the existing ones, and their files, stay the same.
    types = [T.F32, T.F16, T.BF16, *HALF_FIELDS.keys(), T.MXFP4]
    manifest = [
        "# Golden dequantization data; regenerate with /work/refenv/bin/python tools/make_dequant_golden.py",
        f"# gguf-py {importlib.metadata.version('gguf')}, numpy {np.__version__}, seed {SEED}",
        "# <type> <elements> <raw bytes>",
    ]
    for qtype in types:
        raw = plain_bytes(rng, qtype) if qtype in (T.F32, T.F16, T.BF16) else quantized_bytes(rng, qtype)
        data = np.frombuffer(raw, dtype=np.uint8)
        block_elems, block_bytes = GGML_QUANT_SIZES[qtype]
        expected = dequantize(data, qtype)
        expected = np.ascontiguousarray(expected, dtype=np.float32).reshape(-1)
        assert expected.size == len(raw) // block_bytes * block_elems, qtype.name
        assert np.all(np.isfinite(expected) | (qtype in (T.F16, T.BF16))), qtype.name
        name = qtype.name.lower()
        (OUT_DIR / f"{name}.raw").write_bytes(raw)
        (OUT_DIR / f"{name}.f32").write_bytes(expected.astype("<f4").tobytes())
        manifest.append(f"{qtype.name} {expected.size} {len(raw)}")
    manifest.append(write_mxfp4_hf(rng))
    (OUT_DIR / "MANIFEST").write_text("\n".join(manifest) + "\n")
    total = sum(p.stat().st_size for p in OUT_DIR.iterdir())
    print(f"wrote {len(types)} types and MXFP4_HF to {OUT_DIR} ({total} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
