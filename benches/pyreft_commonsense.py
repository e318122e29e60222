#!/usr/bin/env python3
"""pyreft on the commonsense and math recipes of docs/EXPERIMENTS.md, on exactly our tokens.

Reads OUT/train.jsonl and OUT/eval.jsonl written by `benches/export-recipe.ts export` (token ids,
labels and intervention locations built by reft's pyreft-equivalent dataset code), loads
SmolLM2-135M-Instruct from the same Q4_1 GGUF with transformers (dequantized to f32, as reft
does), and runs pyreft itself: `get_reft_model` with one `LoreftIntervention` (or
`NodireftIntervention` for DiReFT) per layer on `block_output`, training with a plain torch loop
equal to HF Trainer's defaults (AdamW, linear schedule with warmup, clip 1.0, shuffled batches
right-padded as `DataCollatorForSeq2Seq`; optional gradient accumulation and length grouping
as the math recipe uses), then greedy `reft_model.generate(...,
intervene_on_prompt=True)` one prompt at a time. Writes OUT/pyreft_generations.jsonl (scored by
`export-recipe.ts score` with reft's scorer) and OUT/pyreft_run.json (timings, losses).

  python3 benches/pyreft_commonsense.py --gguf ~/.cache/reft/SmolLM2-135M-Instruct.Q4_1.gguf \\
      --out runs/sxs --kind loreft --rank 4 --epochs 1 --lr 3e-3 --batch-size 8 --warmup-ratio 0.1
  # the math recipe (benches/math-sxs.sh): micro-batches of 2, 4 accumulated, grouped by length
  python3 benches/pyreft_commonsense.py --gguf ... --out runs/sxs-math --kind loreft --rank 4 --epochs 1 \
      --lr 3e-3 --batch-size 2 --grad-accum 4 --group-by-length --warmup-ratio 0.1 --max-new-tokens 256
"""
import argparse
import json
import math
import os
import sys
import time


def length_grouped(order, lengths, batch_size, gen):
    """HF's LengthGroupedSampler as a list of micro-batches: every window of batch_size x 50 items
    of the shuffled order sorted longest first and cut into micro-batches, whose order is then
    shuffled (the epoch's partial micro-batch stays last, as in src/length-groups.ts)."""
    import torch
    window, micro = batch_size * 50, []
    for w in range(0, len(order), window):
        chunk = sorted(order[w:w + window], key=lambda i: -lengths[i])
        micro += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    last = micro.pop() if len(order) % batch_size else None
    micro = [micro[i] for i in torch.randperm(len(micro), generator=gen).tolist()]
    return micro + ([last] if last is not None else [])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--kind", default="loreft", choices=["loreft", "direft"])
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--warmup-ratio", type=float, default=0.1)
    ap.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step (HF gradient_accumulation_steps)")
    ap.add_argument("--group-by-length", action="store_true", help="HF Trainer's group_by_length (LengthGroupedSampler)")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--householder-base", action="store_true",
                    help="train R over reft's rotation base (the Householder completion) instead of torch's random one")
    ap.add_argument("--no-generate", action="store_true", help="train and save the adapter only")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    import torch
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_fixtures import import_pyreft
    pyreft, _ = import_pyreft()
    from transformers import AutoModelForCausalLM
    torch.manual_seed(a.seed)
    d, f = os.path.dirname(os.path.abspath(a.gguf)), os.path.basename(a.gguf)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32).to(a.device)
    model.eval()
    if a.device.startswith("cuda"):  # f32 as on the CPU: no TF32
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    dev = torch.device(a.device)
    layers, hidden = model.config.num_hidden_layers, model.config.hidden_size
    cls = pyreft.LoreftIntervention if a.kind == "loreft" else pyreft.NodireftIntervention
    extra = {} if a.kind == "loreft" else {"add_bias": False}
    reps = [{"layer": l, "component": "block_output", "low_rank_dimension": a.rank,
             "intervention": cls(embed_dim=hidden, low_rank_dimension=a.rank, dtype=torch.float32, **extra)}
            for l in range(layers)]
    reft = pyreft.get_reft_model(model, pyreft.ReftConfig(representations=reps))
    if a.householder_base:
        from pyreft_trajectory import householder_base
        for itv in reft.interventions.values():
            itv = itv[0] if isinstance(itv, (tuple, list)) else itv
            if not hasattr(itv, "rotate_layer"):
                continue
            rc0 = itv.rotate_layer.weight.detach().clone()
            with torch.no_grad():
                itv.rotate_layer.parametrizations.weight[0].base.copy_(householder_base(rc0, torch))
    params = [p for itv in reft.interventions.values() for p in (itv[0] if isinstance(itv, (tuple, list)) else itv).parameters()]
    train = [json.loads(l) for l in open(os.path.join(a.out, "train.jsonl"))]
    evals = [json.loads(l) for l in open(os.path.join(a.out, "eval.jsonl"))]
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    micro_per_epoch = math.ceil(len(train) / a.batch_size)
    # HF Trainer: one optimizer step per grad_accum micro-batches; the epoch's last partial group
    # still steps.
    steps_per_epoch = math.ceil(micro_per_epoch / a.grad_accum)
    total = steps_per_epoch * a.epochs
    warm = math.ceil(a.warmup_ratio * total)
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: s / max(1, warm) if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    gen = torch.Generator().manual_seed(a.seed)
    losses, t0 = [], time.time()
    for _ in range(a.epochs):
        order = torch.randperm(len(train), generator=gen).tolist()
        batches = [order[s:s + a.batch_size] for s in range(0, len(order), a.batch_size)]
        if a.group_by_length:
            batches = length_grouped(order, [len(r["input_ids"]) for r in train], a.batch_size, gen)
        for g in range(0, len(batches), a.grad_accum):
            group, acc = batches[g:g + a.grad_accum], 0.0
            for b in group:
                rows = [train[i] for i in b]
                t = max(len(r["input_ids"]) for r in rows)
                ids = torch.tensor([r["input_ids"] + [pad] * (t - len(r["input_ids"])) for r in rows], device=dev)
                am = torch.tensor([[1] * len(r["input_ids"]) + [0] * (t - len(r["input_ids"])) for r in rows], device=dev)
                lab = torch.tensor([r["labels"] + [-100] * (t - len(r["labels"])) for r in rows], device=dev)
                # [intervention][example][position]
                locs = [[r["locations"][i] for r in rows] for i in range(layers)]
                _, cf = reft({"input_ids": ids, "attention_mask": am}, unit_locations={"sources->base": (None, locs)}, labels=lab)
                # As HF Trainer: each micro-batch's mean loss divided by the accumulation steps.
                (cf.loss / len(group)).backward()
                acc += cf.loss.item() / len(group)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step(); sched.step(); opt.zero_grad()
            losses.append(acc)
            if len(losses) % 10 == 0:
                print(f"step {len(losses)}/{total} loss {losses[-1]:.4f} ({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
    train_s = time.time() - t0
    # The trained adapter in pyreft's own format: reft reads it (`loadReft`), so both libraries'
    # adapters can be scored on identical tokens by one implementation.
    reft.save(save_directory=os.path.join(a.out, "pyreft_adapter"))
    if a.no_generate:
        json.dump({"library": "pyreft 0.1.0 / pyvene 0.1.8", "args": vars(a), "steps": len(losses), "losses": losses,
                   "train_seconds": train_s}, open(os.path.join(a.out, "pyreft_run.json"), "w"), indent=1)
        print(f"pyreft: {len(losses)} steps in {train_s:.0f}s (loss {losses[0]:.3f} → {losses[-1]:.3f}); adapter saved")
        return
    for itv in reft.interventions.values():
        (itv[0] if isinstance(itv, (tuple, list)) else itv).eval()
    eos = model.config.eos_token_id
    t1 = time.time()
    with open(os.path.join(a.out, "pyreft_generations.jsonl"), "w") as fo:
        for k, e in enumerate(evals):
            ids = torch.tensor([e["input_ids"]], device=dev)
            locs = [[e["locations"][i]] for i in range(layers)]
            with torch.no_grad():
                _, out = reft.generate({"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                                       unit_locations={"sources->base": (None, locs)}, intervene_on_prompt=True,
                                       max_new_tokens=a.max_new_tokens, do_sample=False, eos_token_id=eos, pad_token_id=pad)
            new = out[0, ids.shape[1]:].tolist()
            fo.write(json.dumps({"id": e["id"], "task": e["task"], "prompt": e["prompt"], "new_ids": new, "answer": e["answer"]}) + "\n")
            if (k + 1) % 20 == 0:
                print(f"generated {k + 1}/{len(evals)} ({time.time() - t1:.0f}s)", file=sys.stderr, flush=True)
    eval_s = time.time() - t1
    json.dump({"library": "pyreft 0.1.0 / pyvene 0.1.8", "torch": torch.__version__, "args": vars(a),
               "train_items": len(train), "steps": len(losses), "grad_accum": a.grad_accum, "group_by_length": a.group_by_length, "first_loss": losses[0], "last_loss": losses[-1],
               "train_seconds": train_s, "eval_seconds": eval_s, "eval_prompts": len(evals),
               "threads": torch.get_num_threads(), "device": a.device,
               "gpu": torch.cuda.get_device_name(0) if a.device.startswith("cuda") else None}, open(os.path.join(a.out, "pyreft_run.json"), "w"), indent=1)
    print(f"pyreft: {len(losses)} steps in {train_s:.0f}s (loss {losses[0]:.3f} → {losses[-1]:.3f}); {len(evals)} generations in {eval_s:.0f}s")


if __name__ == "__main__":
    main()
