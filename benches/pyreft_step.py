"""pyreft's side of `benches/compare.sh`: the same shapes as
`crates/reft-core/benches/train_step.rs` on the same model (SmolLM2-135M-Instruct, read from
the GGUF by transformers and dequantized to float32), on the CPU, with interventions in float32.
Prints one JSON line per measurement (median of timed repetitions after one warm-up).

usage: python benches/pyreft_step.py GGUF_PATH [--threads N]
"""
import argparse, json, os, statistics, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from make_fixtures import import_pyreft  # stubs pyreft's unused optional imports

import torch


def batch(model, b, t):
    # Same LCG as the Rust bench, so both sides see identical token ids.
    x, ids, vocab = 1, [], model.config.vocab_size
    for _ in range(b * t):
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        ids.append(3 + (x >> 33) % (vocab - 3))
    ids = torch.tensor(ids).view(b, t)
    labels = ids.clone()
    labels[:, : t // 2] = -100
    return ids, torch.ones_like(ids), labels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from transformers import AutoModelForCausalLM
    pyreft, _ = import_pyreft()
    def load():
        # A .gguf file (dequantized by transformers) or an HF model directory.
        if os.path.isdir(a.gguf):
            m = AutoModelForCausalLM.from_pretrained(a.gguf, dtype=torch.float32, attn_implementation="eager")
        else:
            d, f = os.path.split(os.path.abspath(a.gguf))
            m = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32, attn_implementation="eager")
        return m.to(a.device).eval()
    model = load()
    b, t, steps, prompt = 4, 64, 5, 32
    n_layers = model.config.num_hidden_layers
    cases = [("layer15_l1_r4", [15], [prompt - 1], 4),
             ("all_layers_f7+l7_r8_tied", list(range(n_layers)), list(range(7)) + list(range(prompt - 7, prompt)), 8)]
    ids, am, labels = (x.to(a.device) for x in batch(model, b, t))
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    for name, layers, pos, rank in cases:
        reps = [{"layer": l, "component": "block_output", "low_rank_dimension": rank,
                 "intervention": pyreft.LoreftIntervention(embed_dim=model.config.hidden_size, low_rank_dimension=rank, dtype=torch.float32)}
                for l in layers]
        reft = pyreft.get_reft_model(model, pyreft.ReftConfig(representations=reps))
        locs = [[pos] * b for _ in layers]
        params = [p for p in reft.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-3)

        def step():
            opt.zero_grad()
            _, out = reft({"input_ids": ids, "attention_mask": am}, unit_locations={"sources->base": (None, locs)}, labels=labels)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()

        step()
        times = []
        for _ in range(steps):
            sync(); t0 = time.perf_counter(); step(); sync(); times.append(time.perf_counter() - t0)
        s = statistics.median(times)
        n_train = sum(p.numel() for p in params)
        print(json.dumps({"impl": "pyreft", "device": a.device, "case": name, "what": "train_step", "batch": b, "seq": t, "s_per_step": round(s, 4), "tokens_per_s": round(b * t / s, 1), "trainable": n_train}), flush=True)
        with torch.no_grad():
            times = []
            for _ in range(steps):
                sync(); t0 = time.perf_counter()
                reft({"input_ids": ids, "attention_mask": am}, unit_locations={"sources->base": (None, locs)}, labels=labels)
                sync(); times.append(time.perf_counter() - t0)
        print(json.dumps({"impl": "pyreft", "case": name, "what": "forward_loss_no_grad", "batch": b, "seq": t, "s": round(statistics.median(times), 4)}), flush=True)
        # Unhook before building the next configuration.
        for k, v in list(reft.interventions.items()):
            del reft.interventions[k]
        del reft
        model = load()
    generation(model, pyreft, sync, a.device)


def generation(model, pyreft, sync, device):
    """Greedy decoding with the KV cache, as reft's `train_step` bench times it: batch 1 with a
    32-token prompt and 64 new tokens, and batch 8 with 128-token prompts and 32 new tokens;
    plain HF `generate`, and pyreft's with LoReFT r4 at layer 15 on the last prompt position.
    New tokens over the batch per second (one warm-up call, then one timed call)."""
    for case, b, t, new in [("decode_b1_p32_n64", 1, 32, 64), ("decode_b8_p128_n32", 8, 128, 32)]:
        ids, am, _ = (x.to(device) for x in batch(model, b, t))
        kw = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)

        def timed(fn):
            fn()
            sync(); t0 = time.perf_counter(); fn(); sync()
            return time.perf_counter() - t0

        with torch.no_grad():
            s = timed(lambda: model.generate(input_ids=ids, attention_mask=am, **kw))
        print(json.dumps({"impl": "hf", "case": case, "what": "generate", "new_tokens": b * new, "s": round(s, 3), "tokens_per_s": round(b * new / s, 1)}), flush=True)
        reps = [{"layer": 15, "component": "block_output", "low_rank_dimension": 4,
                 "intervention": pyreft.LoreftIntervention(embed_dim=model.config.hidden_size, low_rank_dimension=4, dtype=torch.float32)}]
        reft = pyreft.get_reft_model(model, pyreft.ReftConfig(representations=reps))
        locs = [[[t - 1]] * b]

        def gen():
            with torch.no_grad():
                reft.generate({"input_ids": ids, "attention_mask": am}, unit_locations={"sources->base": (None, locs)},
                              intervene_on_prompt=True, **kw)
        s = timed(gen)
        print(json.dumps({"impl": "pyreft", "case": case, "what": "generate", "new_tokens": b * new, "s": round(s, 3), "tokens_per_s": round(b * new / s, 1)}), flush=True)
        for k in list(reft.interventions):
            del reft.interventions[k]
        del reft


if __name__ == "__main__":
    main()
