#!/usr/bin/env python3
"""pyreft's side of benches/pyreft-trajectory.sh: a few AdamW steps of one LoReFT r4 adapter on
every layer of SmolLM2-135M-Instruct (positions from OUT's train.jsonl, written by
`benches/export-recipe.ts export`), from pyreft's own initialisation (torch seed 42), on the first
training rows in file order. Prints one JSON line per optimizer step (mean micro-batch loss,
gradient norm before clipping at 1.0, wall-clock seconds) and then the loss of each of the next 8 rows.

It first saves the initial adapter (pyreft's format) to OUT/init, so reft can start from exactly
the same parameters (`benches/trajectory-steps.ts`). With --householder-base it also replaces each
rotation's fixed base (torch's random d x d completion of the initial R) with the Householder
completion reft uses (crates/reft-core/src/interventions/rotation.rs); the initial R is unchanged.

  python3 benches/pyreft_trajectory.py --gguf G --out runs/trajectory --steps 3 --accum 2 --micro 2 [--householder-base]
"""
import argparse
import json
import os
import sys
import time


def householder_base(rc0, torch):
    """The d x d orthogonal matrix whose first r columns are rc0 and whose others come from rc0's
    Householder QR reflections: reft's base."""
    n, r = rc0.shape
    a, tau = torch.geqrf(rc0)
    a_full = torch.zeros(n, n, dtype=rc0.dtype)
    a_full[:, :r] = a
    tau_full = torch.zeros(n, dtype=rc0.dtype)
    tau_full[:r] = tau
    q = torch.linalg.householder_product(a_full, tau_full)
    q[:, :r] *= torch.sign(torch.diagonal(a)).unsqueeze(0)
    return q


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--accum", type=int, default=2)
    ap.add_argument("--micro", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--householder-base", action="store_true")
    a = ap.parse_args()
    import torch
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
    from make_fixtures import import_pyreft
    pyreft, _ = import_pyreft()
    from transformers import AutoModelForCausalLM
    torch.manual_seed(42)
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(a.gguf), gguf_file=os.path.basename(a.gguf), dtype=torch.float32).eval()
    layers, d = model.config.num_hidden_layers, model.config.hidden_size
    reps = [{"layer": l, "component": "block_output", "low_rank_dimension": 4,
             "intervention": pyreft.LoreftIntervention(embed_dim=d, low_rank_dimension=4, dtype=torch.float32)} for l in range(layers)]
    reft = pyreft.get_reft_model(model, pyreft.ReftConfig(representations=reps))
    reft.save(save_directory=os.path.join(a.out, "init"))
    if a.householder_base:
        for itv in reft.interventions.values():
            itv = itv[0] if isinstance(itv, (tuple, list)) else itv
            rc0 = itv.rotate_layer.weight.detach().clone()
            with torch.no_grad():
                itv.rotate_layer.parametrizations.weight[0].base.copy_(householder_base(rc0, torch))
            assert torch.allclose(itv.rotate_layer.weight, rc0, atol=1e-5), "the initial R must not change"
    params = [p for itv in reft.interventions.values() for p in (itv[0] if isinstance(itv, (tuple, list)) else itv).parameters()]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    train = [json.loads(l) for l in open(os.path.join(a.out, "train.jsonl"))]

    def forward(rows):
        t = max(len(r["input_ids"]) for r in rows)
        ids = torch.tensor([r["input_ids"] + [0] * (t - len(r["input_ids"])) for r in rows])
        am = torch.tensor([[1] * len(r["input_ids"]) + [0] * (t - len(r["input_ids"])) for r in rows])
        lab = torch.tensor([r["labels"] + [-100] * (t - len(r["labels"])) for r in rows])
        locs = [[r["locations"][i] for r in rows] for i in range(layers)]
        return reft({"input_ids": ids, "attention_mask": am}, unit_locations={"sources->base": (None, locs)}, labels=lab)[1].loss

    k = 0
    for s in range(a.steps):
        t0 = time.perf_counter()
        acc = 0.0
        for _ in range(a.accum):
            loss = forward(train[k:k + a.micro])
            k += a.micro
            (loss / a.accum).backward()
            acc += loss.item() / a.accum
        gn = torch.nn.utils.clip_grad_norm_(params, 1.0).item()
        opt.step()
        opt.zero_grad()
        print(json.dumps({"step": s + 1, "loss": acc, "gradNorm": gn, "seconds": time.perf_counter() - t0}), flush=True)
    with torch.no_grad():
        for r in train[k:k + 8]:
            print(json.dumps({"eval": forward([r]).item()}), flush=True)


if __name__ == "__main__":
    main()
