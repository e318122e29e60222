#!/usr/bin/env python3
"""pyreft on GLUE with an encoder, for the side-by-side rows of docs/EXPERIMENTS.md.

Runs pyreft's own intervention model (`pyreft.get_reft_model` with `LoreftIntervention` /
`NodireftIntervention` on `bert.encoder.layer[l].output`, the paper's GLUE site) on a
`BertForSequenceClassification` built from the same checkpoint `reft` uses (all-MiniLM-L6-v2),
with the classifier trainable (pyreft's `--allow_cls_grad`). The loop is a plain torch loop with
HF Trainer's defaults (AdamW β=(0.9, 0.999), ε=1e-8, linear schedule with warmup, clip 1.0,
`model.eval()` dropout off as `get_reft_model` leaves it): pyreft's `ReftTrainerForSequence
Classification` targets transformers 4.45 and this machine has 5.x. Data: the same TSV files,
the training rows of `--train-indices` (reft's seeded subset; else the first `--train-limit`); scored on every dev row and on the rows listed in
`--test-indices` (the test half of `reft`'s split), with GLUE's metrics.

  python3 benches/pyreft_glue.py --model ~/.cache/reft/all-MiniLM-L6-v2 --task rte \\
      --method loreft --epochs 2 --lr 4e-3 --train-limit 1000 --out runs/pyreft-rte.json
"""
import argparse
import csv
import json
import math
import os
import sys
import time

TASKS = {  # folder, text columns, label column, label map (None = float), num_labels, header
    "rte": ("RTE", ["sentence1", "sentence2"], "label", {"entailment": 0, "not_entailment": 1}, 2),
    "mrpc": ("MRPC", ["#1 String", "#2 String"], "Quality", {"0": 0, "1": 1}, 2),
    "sst2": ("SST-2", ["sentence"], "label", {"0": 0, "1": 1}, 2),
    "stsb": ("STS-B", ["sentence1", "sentence2"], "score", None, 1),
    "cola": ("CoLA", [3], 1, {"0": 0, "1": 1}, 2),  # no header: source, label, mark, sentence
}


def load(data_dir, task, split, limit=None):
    folder, cols, lab, lmap, _ = TASKS[task]
    path = os.path.join(data_dir, "glue", folder, f"{split}.tsv")
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").rstrip("\r").split("\t") for line in f if line.strip()]
    if task != "cola":
        header, rows = rows[0], rows[1:]
        cols = [header.index(c) for c in cols]
        lab = header.index(lab)
    out = []
    for r in rows[:limit] if limit else rows:
        y = float(r[lab]) if lmap is None else lmap[r[lab]]
        out.append(([r[c] for c in cols], y))
    return out


def metrics(task, pred, ref):
    import numpy as np
    p, r = np.asarray(pred, dtype=float), np.asarray(ref, dtype=float)
    if task == "stsb":
        pear = float(np.corrcoef(p, r)[0, 1])
        rank = lambda v: np.argsort(np.argsort(v, kind="stable"), kind="stable").astype(float)
        spear = float(np.corrcoef(rank(p), rank(r))[0, 1])  # no ties in real-valued predictions
        return {"pearson": pear, "spearmanr": spear}
    acc = float((p == r).mean())
    if task == "cola":
        tp = float(((p == 1) & (r == 1)).sum()); tn = float(((p == 0) & (r == 0)).sum())
        fp = float(((p == 1) & (r == 0)).sum()); fn = float(((p == 0) & (r == 1)).sum())
        den = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return {"matthews_correlation": 0.0 if den == 0 else (tp * tn - fp * fn) / den}
    out = {"accuracy": acc}
    if task == "mrpc":
        tp = float(((p == 1) & (r == 1)).sum()); fp = float(((p == 1) & (r == 0)).sum())
        fn = float(((p == 0) & (r == 1)).sum())
        out["f1"] = 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--task", required=True, choices=sorted(TASKS))
    ap.add_argument("--method", default="loreft", choices=["loreft", "direft", "head-only"])
    ap.add_argument("--data-dir", default=os.environ.get("REFT_DATA_DIR", "../shared/data"))
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rank", type=int, default=1)
    ap.add_argument("--first", type=int, default=1, help="intervene on the first N tokens (pN)")
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--warmup-ratio", type=float, default=0.0)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--test-indices", default=None, help="JSON list of dev row indices (reft's test half)")
    ap.add_argument("--train-indices", default=None, help="JSON list of train row indices (reft's seeded subset)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    import torch
    if a.threads:
        torch.set_num_threads(a.threads)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
    from make_fixtures import import_pyreft
    pyreft, _ = import_pyreft()
    from transformers import AutoTokenizer, BertForSequenceClassification
    torch.manual_seed(a.seed)
    k = TASKS[a.task][4]
    tok = AutoTokenizer.from_pretrained(a.model)
    model = BertForSequenceClassification.from_pretrained(a.model, num_labels=k, attn_implementation="eager")
    layers = model.config.num_hidden_layers
    d = model.config.hidden_size
    if a.method == "head-only":
        for p in model.parameters():
            p.requires_grad_(False)
        model.eval()
        reft = None
    else:
        cls = pyreft.LoreftIntervention if a.method == "loreft" else pyreft.NodireftIntervention
        extra = {} if a.method == "loreft" else {"add_bias": False}
        reps = [{"layer": l, "component": f"bert.encoder.layer[{l}].output", "low_rank_dimension": a.rank,
                 "intervention": cls(embed_dim=d, low_rank_dimension=a.rank, dropout=a.dropout,
                                     dtype=torch.float32, **extra)}
                for l in range(layers)]
        reft = pyreft.get_reft_model(model, pyreft.ReftConfig(representations=reps))
    for p in model.classifier.parameters():  # allow_cls_grad
        p.requires_grad_(True)
    train = load(a.data_dir, a.task, "train", None if a.train_indices else a.train_limit)
    if a.train_indices:
        train = [train[i] for i in json.load(open(a.train_indices))]
    dev = load(a.data_dir, a.task, "dev")

    def batches(rows, shuffle, gen=None):
        order = torch.randperm(len(rows), generator=gen).tolist() if shuffle else list(range(len(rows)))
        for s in range(0, len(order), a.batch_size):
            chunk = [rows[i] for i in order[s:s + a.batch_size]]
            texts = [c[0] for c in chunk]
            enc = tok([t[0] for t in texts], [t[1] for t in texts] if len(texts[0]) > 1 else None,
                      truncation=True, max_length=a.max_length, padding=True, return_tensors="pt")
            y = torch.tensor([c[1] for c in chunk], dtype=torch.float if k == 1 else torch.long)
            yield enc, y

    def run(enc, y=None):
        if reft is None:
            return model(**enc, labels=y)
        n = enc["input_ids"].shape[0]
        locs = [[list(range(a.first))] * n] * layers
        return reft(dict(enc), unit_locations={"sources->base": (None, locs)}, labels=y)[1]

    params = [p for p in model.classifier.parameters()]
    if reft is not None:
        params += [p for itv in reft.interventions.values() for p in (itv[0] if isinstance(itv, (tuple, list)) else itv).parameters()]
    n_itv = sum(p.numel() for p in params) - sum(p.numel() for p in model.classifier.parameters())
    n_head = sum(p.numel() for p in model.classifier.parameters())
    n_model = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("classifier."))
    steps = math.ceil(len(train) / a.batch_size) * math.ceil(a.epochs)
    total = math.floor(math.ceil(len(train) / a.batch_size) * a.epochs)
    warm = int(a.warmup_ratio * total)
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: s / max(1, warm) if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    gen = torch.Generator().manual_seed(a.seed)
    t0 = time.time()
    step, losses = 0, []
    while step < total:
        for enc, y in batches(train, True, gen):
            out = run(enc, y)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step(); sched.step(); opt.zero_grad()
            losses.append(out.loss.item())
            step += 1
            if step >= total:
                break
    train_s = time.time() - t0
    preds = []
    t1 = time.time()
    with torch.no_grad():
        for enc, _ in batches(dev, False):
            lg = run(enc).logits
            preds += lg[:, 0].tolist() if k == 1 else lg.argmax(-1).tolist()
    eval_s = time.time() - t1
    refs = [r[1] for r in dev]
    res = {"task": a.task, "method": a.method, "library": "pyreft", "versions": {"torch": torch.__version__},
           "args": vars(a), "steps": step, "train_seconds": train_s, "eval_seconds": eval_s,
           "first_loss": losses[0], "last_loss": sum(losses[-10:]) / len(losses[-10:]),
           "params": {"intervention": n_itv, "head": n_head, "model": n_model,
                      "intervention_pct": 100 * n_itv / n_model},
           "dev_all": {"n": len(dev), **metrics(a.task, preds, refs)}}
    if a.test_indices:
        idx = json.load(open(a.test_indices))
        res["dev_test_half"] = {"n": len(idx), **metrics(a.task, [preds[i] for i in idx], [refs[i] for i in idx])}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    json.dump(res, open(a.out, "w"), indent=1)
    print(json.dumps({k2: res[k2] for k2 in ("task", "method", "steps", "train_seconds", "dev_all")}))


if __name__ == "__main__":
    main()
