"""Architecture fixtures for reft's loader parity test (`crates/reft-core/tests/architectures.rs`):
tiny random Qwen2 (q/k/v bias), Mistral (sliding window) and Llama with llama3 rope scaling and
tied embeddings, saved with `save_pretrained` (safetensors; the Qwen2 one sharded to exercise
`model.safetensors.index.json`), plus transformers' logits on a fixed right-padded batch.

usage: python scripts/make_arch_fixtures.py --out crates/reft-core/tests/fixtures/arch
Versions used for the committed files: see `manifest.json` in the output directory.
"""
import argparse, json, os

import torch
import transformers
from safetensors.torch import save_file


def batch():
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(3, 128, (2, 10), generator=g)
    am = torch.ones_like(ids)
    am[1, 7:] = 0
    return ids, am


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    common = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=128, max_position_embeddings=256, rms_norm_eps=1e-6,
                  attn_implementation="eager")
    models = {
        "tiny-qwen2": (transformers.Qwen2Config, dict(common, rope_theta=1e6, tie_word_embeddings=False), "100KB"),
        "tiny-mistral": (transformers.MistralConfig, dict(common, rope_theta=1e4, sliding_window=4, tie_word_embeddings=False), None),
        "tiny-llama3-scaled": (transformers.LlamaConfig, dict(common, rope_theta=5e5, tie_word_embeddings=True,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 16}), None),
    }
    ids, am = batch()
    tensors = {"input_ids": ids, "attention_mask": am}
    for name, (cfg_cls, kw, shard) in models.items():
        torch.manual_seed(1)
        cfg = cfg_cls(**kw)
        model = transformers.AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.float32).eval()
        if name == "tiny-qwen2":  # random (not zero) q/k/v biases, so the test sees them
            with torch.no_grad():
                for layer in model.model.layers:
                    for p in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                        p.bias.normal_(0, 0.5)
        kwargs = {"safe_serialization": True}
        if shard:
            kwargs["max_shard_size"] = shard
        model.save_pretrained(os.path.join(out, name), **kwargs)
        with torch.no_grad():
            tensors[f"{name}.logits"] = model(input_ids=ids, attention_mask=am).logits.float().contiguous()
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out, "logits.safetensors"))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"format_version": 1, "torch": torch.__version__, "transformers": transformers.__version__,
                   "models": list(models), "note": "compare logits where attention_mask == 1"}, f, indent=1)


if __name__ == "__main__":
    main()
