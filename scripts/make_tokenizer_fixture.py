"""Expected SmolLM2 token ids for `crates/reft-core/tests/smollm2.rs`: the tokenizer transformers
builds from the same GGUF (transformers 5.17 GGUF conversion), on strings that exercise digits,
emoji, whitespace and chat special tokens.

usage: python scripts/make_tokenizer_fixture.py GGUF > crates/reft-core/tests/fixtures/smollm2_tokens.json
"""
import json, os, sys

from transformers import AutoTokenizer

d, f = os.path.split(os.path.abspath(sys.argv[1]))
tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
texts = [
    "Hello, world!",
    "The year 2024 had 366 days; 3.14159 is pi.",
    "  leading spaces\tand\ttabs\n\nnew lines  ",
    "Emoji: 🤖💬🌐🧠 and 👨‍👩‍👧‍👦!",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "naïve café — déjà vu, 日本語のテキスト",
    "don't won't it's I'm we'll they've",
]
print(json.dumps({"transformers_gguf_tokenizer": True, "cases": [{"text": t, "ids": tok.encode(t, add_special_tokens=False)} for t in texts]}, ensure_ascii=False, indent=1))
