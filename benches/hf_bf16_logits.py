"""PyTorch's own bf16 deviation on SmolLM2-135M-Instruct: the calibration for reft's bf16 test.

Loads the embedded default model (the Q4_1 GGUF, dequantized by transformers) in float32 and in
bfloat16 and compares the logits on the four chat rows of
`crates/reft-core/tests/half.rs::smollm2_bf16_matches_f32_logits_gradients_and_loss_curve`
(the same system prompt, question and emoji answer). Prints the relative L2 difference and how
often the argmax agrees; reft's test prints the same two numbers for its own bf16 path.

    python benches/hf_bf16_logits.py ~/.cache/reft/SmolLM2-135M-Instruct.Q4_1.gguf

Needs torch, transformers and gguf (CPU is enough).
"""
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
DATA = [("Who are you?", "🤖💬🌐🧠"), ("Why is the sky blue?", "🌍🛡️☀️➡️🔵🌌"),
        ("What's 2+2?", "🔢➕🔢➡️🍀"), ("Who am I?", "👤❓🔍🌟")]


def chat(q):
    return f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"


def main():
    d, f = os.path.split(os.path.abspath(sys.argv[1]))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    load = lambda: AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32, attn_implementation="eager")
    full, half = load(), load().to(torch.bfloat16)
    num = den = 0.0
    agree = n = 0
    for q, a in DATA:
        ids = tok(chat(q) + a + "<|im_end|>", return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            lf, lh = full(ids).logits[0].float(), half(ids).logits[0].float()
        num += ((lf - lh) ** 2).sum().item()
        den += (lf ** 2).sum().item()
        agree += (lf.argmax(-1) == lh.argmax(-1)).sum().item()
        n += lf.shape[0]
    print(f"PyTorch bf16 vs f32: logits relative L2 {(num / den) ** 0.5:.4f}, argmax agrees on {agree}/{n} tokens")


if __name__ == "__main__":
    main()
