#!/usr/bin/env python3
"""Encoder parity fixtures: tiny BERT and RoBERTa sequence classifiers with pyreft interventions.

Part of scripts/make_fixtures.py (which calls `run(pyreft, out)` after the decoder fixtures); run
alone with `python3 scripts/make_fixtures.py --out DIR --encoders-only`.

WHAT IT PRODUCES (under OUT/encoders):
  tiny-bert/            random BertForSequenceClassification, float32, hidden 32, 2 layers,
                        4 heads, intermediate 64, vocab 100, 64 positions, 2 token types,
                        num_labels 3 (single-label classification), eager attention, seed 0.
                        Saved with save_pretrained: keys `bert.*`, `classifier.*` (pooler kept).
  tiny-roberta/         random RobertaForSequenceClassification, same shape, pad_token_id 1,
                        66 positions, 1 token type, num_labels 1 (regression), seed 1.
  base.safetensors      per model: the batch, and the logits without interventions.
  <case>.safetensors    one pyreft forward + backward per case: inputs, positions, canonical
  <case>.json           intervention parameters (as in make_fixtures.py), the head's trainable
                        parameters (`head.*`), logits `[b, num_labels]`, loss, and the gradient
                        of the loss w.r.t. every trainable tensor (`grad.*`).
Head parameters as pyreft's `--allow_cls_grad` leaves them trainable: BERT's `classifier`
(`head.out.weight`/`head.out.bias`; the pooler stays frozen), RoBERTa's `classifier.dense` and
`classifier.out_proj` (`head.dense.*`, `head.out.*`).
Interventions use pyvene string components (RoBERTa and BERT have no model card):
`<bert|roberta>.encoder.layer[l].output` is the layer output (our `block_output`) and
`....layer[l].input` its input (our `block_input`).
"""

import json
import os

D, RANK, VOCAB = 32, 2, 100


def make_models():
    import torch
    from transformers import BertConfig, BertForSequenceClassification, RobertaConfig, RobertaForSequenceClassification
    common = dict(hidden_size=D, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  vocab_size=VOCAB, hidden_act="gelu", hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0, attn_implementation="eager")
    torch.manual_seed(0)
    bert = BertForSequenceClassification(BertConfig(max_position_embeddings=64, type_vocab_size=2,
                                                    num_labels=3, pad_token_id=0, **common)).eval()
    torch.manual_seed(1)
    roberta = RobertaForSequenceClassification(RobertaConfig(max_position_embeddings=66, type_vocab_size=1,
                                                             num_labels=1, pad_token_id=1, bos_token_id=0,
                                                             eos_token_id=2, layer_norm_eps=1e-5, **common)).eval()
    # Random init leaves LayerNorms at (1, 0) and biases at 0; perturb them so the parity
    # tests would notice a swapped gain/bias or a dropped bias.
    with torch.no_grad():
        for m in (bert, roberta):
            for n, p in m.named_parameters():
                if "LayerNorm" in n or n.endswith(".bias"):
                    p.add_(0.1 * torch.randn_like(p))
    return bert, roberta


def batches():
    """Right-padded batches: BERT sentence pairs with token types, RoBERTa `<s> … </s>` rows
    padded with id 1 (so its position ids skip the padding)."""
    import torch
    g = torch.Generator().manual_seed(7)
    rnd = lambda n: torch.randint(5, VOCAB, (n,), generator=g).tolist()
    rows = [(7, 4), (5, 3), (9, 0)]  # (first segment, second segment) lengths incl. specials
    t = max(a + b for a, b in rows)
    ids, am, tt = [], [], []
    for a, b in rows:
        r = [2] + rnd(a - 2) + [3] + (rnd(b - 1) + [3] if b else [])
        ids.append(r + [0] * (t - len(r)))
        am.append([1] * len(r) + [0] * (t - len(r)))
        tt.append([0] * a + [1] * b + [0] * (t - len(r)))
    bert = (torch.tensor(ids), torch.tensor(am), torch.tensor(tt), torch.tensor([0, 2, 1]))
    lens = [6, 8, 4]
    t = max(lens)
    ids, am = [], []
    for n in lens:
        r = [0] + rnd(n - 2) + [2]
        ids.append(r + [1] * (t - n))
        am.append([1] * n + [0] * (t - n))
    roberta = (torch.tensor(ids), torch.tensor(am), None, torch.tensor([0.5, 3.25, 4.0]))
    return bert, roberta


def head_params(model):
    """Trainable head tensors under our names, as pyreft's allow_cls_grad unfreezes them."""
    c = model.classifier
    if hasattr(c, "out_proj"):
        return {"head.dense.weight": c.dense.weight, "head.dense.bias": c.dense.bias,
                "head.out.weight": c.out_proj.weight, "head.out.bias": c.out_proj.bias}
    return {"head.out.weight": c.weight, "head.out.bias": c.bias}


def run_case(fx, pyreft, model, family, name, cls_name, sites, locs, batch, out):
    import torch
    ids, am, tt, labels = batch
    torch.manual_seed(11)
    reps = []
    for layer, where in sites:
        extra = {"add_bias": False} if cls_name == "NodireftIntervention" else {}
        itv = getattr(pyreft, cls_name)(embed_dim=D, low_rank_dimension=RANK, dtype=torch.float32,
                                        dropout=0.0, act_fn=None, **extra)
        reps.append({"layer": layer, "component": f"{family}.encoder.layer[{layer}].{where}",
                     "low_rank_dimension": RANK, "intervention": itv})
    reft = pyreft.get_reft_model(model, pyreft.ReftConfig(representations=reps))
    keys = list(reft.sorted_keys)
    itvs = [reft.interventions[k] for k in keys]
    itvs = [v[0] if isinstance(v, (tuple, list)) else v for v in itvs]
    params = {}
    for i, itv in enumerate(itvs):
        fx.unparametrize(itv)
        itv.eval()
        for cname, (p, _, _) in fx.canonical_params(itv).items():
            params[f"int{i}.{cname}"] = p
    heads = head_params(model)
    for p in heads.values():
        p.requires_grad_(True)
    params.update(heads)
    inputs = {"input_ids": ids, "attention_mask": am}
    if tt is not None:
        inputs["token_type_ids"] = tt
    _, cf = reft(inputs, unit_locations={"sources->base": (None, locs)}, labels=labels)
    names = list(params)
    grads = torch.autograd.grad(cf.loss, [params[n] for n in names], allow_unused=True)
    tensors = {"input_ids": ids, "attention_mask": am, "class_labels": labels.float(),
               "positions": fx.locs_tensor(locs), "logits": cf.logits.float(),
               "loss": cf.loss.detach().reshape(())}
    if tt is not None:
        tensors["token_type_ids"] = tt
    for n in names:
        tensors[n] = params[n]
    for n, gr in zip(names, grads):
        tensors["grad." + n] = gr if gr is not None else torch.zeros_like(params[n])
    for p in heads.values():
        p.requires_grad_(False)
    fx.save_tensors(os.path.join(out, f"{name}.safetensors"), tensors)
    fx.dump_json(os.path.join(out, f"{name}.json"), {
        "name": name, "model": f"tiny-{family}", "intervention_class": cls_name, "rank": RANK,
        "sites": [{"layer": l, "component": "block_output" if w == "output" else "block_input",
                   "pyvene_component": f"{family}.encoder.layer[{l}].{w}"} for l, w in sites],
        "pyvene_keys": keys, "loss": cf.loss.item(),
        "problem": "regression (MSE)" if model.config.num_labels == 1 else "single-label classification (CE)",
        "tensor_keys": {k: list(fx.to_store(v).shape) for k, v in tensors.items()},
    })


def run(fx, pyreft, out_root):
    """Writes every encoder fixture under out_root/encoders; `fx` is the make_fixtures module."""
    import torch
    out = os.path.join(out_root, "encoders")
    os.makedirs(out, exist_ok=True)
    bert, roberta = make_models()
    bert.save_pretrained(os.path.join(out, "tiny-bert"), safe_serialization=True)
    roberta.save_pretrained(os.path.join(out, "tiny-roberta"), safe_serialization=True)
    b_batch, r_batch = batches()
    base = {}
    with torch.no_grad():
        for key, m, (ids, am, tt, _) in (("bert", bert, b_batch), ("roberta", roberta, r_batch)):
            kw = {"input_ids": ids, "attention_mask": am}
            if tt is not None:
                kw["token_type_ids"] = tt
                base[f"{key}.token_type_ids"] = tt
            base[f"{key}.input_ids"], base[f"{key}.attention_mask"] = ids, am
            base[f"{key}.logits"] = m(**kw).logits
            # Hidden states of the last layer, to test the encoder without a head.
            base[f"{key}.last_hidden"] = getattr(m, key)(**kw).last_hidden_state
    fx.save_tensors(os.path.join(out, "base.safetensors"), base)
    # Positions: [n_interventions][batch][n_pos]; the GLUE recipe edits the first token.
    first2 = [[0, 1]] * 3
    # No position repeats within a row: pyvene scatters a repeated position several times and
    # torch's scatter backward then hands every copy the full gradient (counted twice), while
    # the forward is last-write-wins; we edit each position once, which is the true derivative.
    run_case(fx, pyreft, bert, "bert", "bert_loreft", "LoreftIntervention",
             [(0, "output"), (1, "output")], [first2, [[0, 2], [1, 3], [0, 4]]], b_batch, out)
    run_case(fx, pyreft, bert, "bert", "bert_nodireft_input", "NodireftIntervention",
             [(1, "input")], [[[0, 4], [2, 1], [3, 0]]], b_batch, out)
    run_case(fx, pyreft, roberta, "roberta", "roberta_loreft", "LoreftIntervention",
             [(0, "output"), (1, "output")], [first2, [[0, 5], [2, 7], [3, 1]]], r_batch, out)
    with open(os.path.join(out, "README.json"), "w") as f:
        json.dump({"doc": __doc__}, f, indent=1)
