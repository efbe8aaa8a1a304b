#!/usr/bin/env python3
"""Writes safetensors files with the real Python writers, for tests/core/format/safetensors_test.cpp.

Output, under tests/data/safetensors/:
  tiny.safetensors   one file from safetensors.torch.save_file: every dtype the reader converts or
                     passes through, a scalar, an empty tensor and __metadata__. The header is padded
                     with spaces to a multiple of 8, as the package does.
  sharded/           huggingface_hub.save_torch_state_dict with a tiny max_shard_size: two shards and
                     model.safetensors.index.json, named and laid out as transformers' save_pretrained does.

The values are simple (exact in their dtypes); the C++ test spells the same ones. Deterministic: rerunning
must not change any file. Run from the repository root with the reference environment:

    /work/refenv/bin/python tools/make_safetensors_golden.py
"""

from __future__ import annotations

import pathlib
import shutil
import sys

import torch
from huggingface_hub import save_torch_state_dict
from safetensors.torch import save_file

OUT_DIR = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "safetensors"


def tiny() -> dict[str, torch.Tensor]:
    return {
        "f32": torch.tensor([[0.1, -2.5, 1e-40], [1e30, -0.0, 7.0]], dtype=torch.float32),
        "f16": torch.tensor([1.0, -2.5, 65504.0], dtype=torch.float16),
        "bf16": torch.tensor([[1.0, -0.5], [3.140625, 256.0]], dtype=torch.bfloat16),
        "f64": torch.tensor([0.1, 1e-3], dtype=torch.float64),
        "i64": torch.tensor([1, -1], dtype=torch.int64),
        "u8": torch.tensor([0, 1, 128, 255], dtype=torch.uint8),
        "mask": torch.tensor([True, False, True]),
        "scalar": torch.tensor(42.0, dtype=torch.float32),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
    }


def sharded() -> dict[str, torch.Tensor]:
    return {
        "model.layers.0.w": (torch.arange(16, dtype=torch.float32) * 0.25 - 2).reshape(4, 4),
        "model.layers.1.w": ((torch.arange(16, dtype=torch.float32) - 8) * 0.5).reshape(4, 4).to(torch.bfloat16),
        "model.norm.weight": torch.tensor([1.0, 2.0, 3.0, 4.0]),
        "lm_head.weight": (torch.arange(8, dtype=torch.float32) * -1).reshape(2, 4),
    }


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    tiny_path = OUT_DIR / "tiny.safetensors"
    # One metadata key: the package keeps metadata in a hash map, so two keys come out in varying order.
    save_file(tiny(), tiny_path, metadata={"format": "pt"})
    header_length = int.from_bytes(tiny_path.read_bytes()[:8], "little")
    assert header_length % 8 == 0, header_length

    shard_dir = OUT_DIR / "sharded"
    shutil.rmtree(shard_dir, ignore_errors=True)
    shard_dir.mkdir()
    save_torch_state_dict(sharded(), shard_dir, max_shard_size=80, metadata={"format": "pt"})
    shards = sorted(p.name for p in shard_dir.glob("*.safetensors"))
    assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], shards
    assert (shard_dir / "model.safetensors.index.json").exists()

    total = sum(p.stat().st_size for p in OUT_DIR.rglob("*") if p.is_file())
    print(f"wrote {tiny_path.name} and {len(shards)} shards to {OUT_DIR} ({total} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
