#!/usr/bin/env python3
"""Independent sanity check of the fixtures written by scripts/make_fixtures.py.

Uses only torch, transformers and safetensors (no pyreft/pyvene): it reloads tiny-llama with
transformers, re-implements every intervention from its documented formula with plain forward
hooks on the canonical parameters stored in each case, and compares logits, loss, gradients,
the recorded intervention inputs/outputs, the greedy generations (re-done by a no-cache greedy
loop that re-applies the prompt interventions at every step) and the NodiReFT AdamW trajectory.
Also checks that LoReFT logits equal the base logits strictly before the first intervened
position of each row and differ from it at and after, that rotations are orthonormal, and that
the saved adapters hold the same numbers as the cases.

usage: python3 scripts/check_fixtures.py FIXTURE_DIR      (exit status 1 on any failure)
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file

torch.use_deterministic_algorithms(True)
FAILS = []
TOL = dict(logits=2e-5, loss=2e-6, grad_rel=2e-4, param=2e-5)


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        FAILS.append(msg)


def maxdiff(a, b):
    return float((a.detach().double() - b.detach().double()).abs().max()) if a.numel() else 0.0


def rel(a, b):
    return float((a.double() - b.double()).norm() / (b.double().norm() + 1e-12))


def load_model(path):
    from transformers import LlamaForCausalLM
    m = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def edit_fn(cls, P, i):
    g = lambda k: P[f"int{i}.{k}"]
    if cls == "LoreftIntervention":
        return lambda h: h + (h @ g("learned_source.weight").T + g("learned_source.bias")
                              - h @ g("rotate_layer")) @ g("rotate_layer").T
    if cls == "NoreftIntervention":
        return lambda h: h + (h @ g("learned_source.weight").T + g("learned_source.bias")
                              - h @ g("proj_layer.weight").T) @ g("proj_layer.weight")
    if cls == "NodireftIntervention":
        return lambda h: h + (h @ g("learned_source.weight").T + g("learned_source.bias")) \
            @ g("proj_layer.weight")
    if cls == "DireftIntervention":
        return lambda h: h + (h @ g("learned_source.weight").T + g("learned_source.bias")) \
            @ g("rotate_layer").T
    if cls == "ConsreftIntervention":
        return lambda h: h + (g("learned_source") - h @ g("rotate_layer")) @ g("rotate_layer").T
    if cls == "LobireftIntervention":
        return lambda h: h + g("learned_source") @ g("rotate_layer").T
    raise KeyError(cls)


def apply_at(h, pos, f, rec):
    """h [B,T,d]; pos LongTensor [B,P]; returns h with rows' positions replaced by f(gathered)."""
    idx = pos.unsqueeze(-1).expand(-1, -1, h.shape[-1])
    sel = torch.gather(h, 1, idx)
    new = f(sel)
    if rec is not None:
        rec.append((sel.detach(), new.detach()))
    return h.scatter(1, idx, new)


def install(model, cls, P, layers, comps, positions, recs=None, active=lambda: True):
    hs = []
    for i, (l, c) in enumerate(zip(layers, comps)):
        f = edit_fn(cls, P, i)
        pos = positions[i]
        rec = recs[i] if recs is not None else None
        layer = model.model.layers[l]
        if c == "block_input":
            def pre(mod, args, kwargs, f=f, pos=pos, rec=rec):
                if not active():
                    return None
                if args:
                    return (apply_at(args[0], pos, f, rec),) + tuple(args[1:]), kwargs
                kwargs = dict(kwargs)
                kwargs["hidden_states"] = apply_at(kwargs["hidden_states"], pos, f, rec)
                return args, kwargs
            hs.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
            continue
        mod = {"block_output": layer, "mlp_output": layer.mlp, "attention_output": layer.self_attn}[c]

        def hook(mod, args, out, f=f, pos=pos, rec=rec):
            if not active():
                return None
            if isinstance(out, tuple):
                return (apply_at(out[0], pos, f, rec),) + tuple(out[1:])
            return apply_at(out, pos, f, rec)
        hs.append(mod.register_forward_hook(hook))
    return hs


def ce(logits, labels):
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)


def main(d):
    man = json.load(open(os.path.join(d, "manifest.json")))
    check(man["format_version"] == 1, "manifest format_version 1")
    total = sum(f["bytes"] for f in man["files"])
    check(total < 2 * 1024 * 1024, f"total size {total / 1024:.0f} KiB < 2 MiB")
    model = load_model(os.path.join(d, "tiny-llama"))
    tied = load_model(os.path.join(d, "tiny-llama-tied"))
    check(tied.lm_head.weight.data_ptr() == tied.model.embed_tokens.weight.data_ptr()
          or torch.equal(tied.lm_head.weight, tied.model.embed_tokens.weight), "tied head is tied")
    check(model.config.num_key_value_heads == 2 and model.config.num_hidden_layers == 3,
          "tiny-llama config (GQA 4/2, 3 layers)")
    base = load_file(os.path.join(d, "cases", "base.safetensors"))
    ids, am, labels = base["input_ids"], base["attention_mask"], base["labels"]
    with torch.no_grad():
        o = model(input_ids=ids, attention_mask=am, labels=labels)
        ot = tied(input_ids=ids, attention_mask=am)
    check(maxdiff(o.logits, base["logits"]) < TOL["logits"],
          f"reloaded tiny-llama reproduces base logits ({maxdiff(o.logits, base['logits']):.2e})")
    check(abs(float(o.loss) - float(base["loss"])) < TOL["loss"], "base loss")
    check(maxdiff(ot.logits, base["tied_logits"]) < TOL["logits"], "reloaded tied model logits")

    # forward/gradient cases
    for name in man["cases"]:
        desc = json.load(open(os.path.join(d, "cases", name + ".json")))
        T = load_file(os.path.join(d, "cases", name + ".safetensors"))
        cls, layers, comps = desc["intervention_class"], desc["layers"], desc["components"]
        check(torch.equal(T["input_ids"], ids) and torch.equal(T["labels"], labels),
              f"{name}: same batch as base")
        P = {k: T[k].clone().requires_grad_(True) for k in desc["param_map"]}
        pos = T["positions"]
        recs = [[] for _ in layers]
        hs = install(model, cls, P, layers, comps, pos, recs)
        try:
            out = model(input_ids=ids, attention_mask=am)
        finally:
            for h in hs:
                h.remove()
        loss = ce(out.logits, labels)
        md = maxdiff(out.logits, T["logits"])
        check(md < TOL["logits"], f"{name}: logits match re-implementation ({md:.2e})")
        check(abs(loss.item() - float(T["loss"])) < TOL["loss"],
              f"{name}: loss {loss.item():.6f} vs {float(T['loss']):.6f}")
        grads = torch.autograd.grad(loss, list(P.values()))
        worst = max(rel(g, T["grad." + k]) for k, g in zip(P, grads))
        check(worst < TOL["grad_rel"], f"{name}: grads match (worst rel {worst:.2e})")
        io = max(max(maxdiff(recs[i][0][0], T[f"int{i}.in"]), maxdiff(recs[i][0][1], T[f"int{i}.out"]))
                 for i in range(len(layers)))
        check(io < TOL["logits"], f"{name}: intervention in/out match ({io:.2e})")
        for k in P:
            if k.endswith("rotate_layer"):
                R = T[k].double()
                e = float((R.T @ R - torch.eye(R.shape[1], dtype=torch.float64)).abs().max())
                check(e < 1e-5, f"{name}: {k} orthonormal columns ({e:.1e})")
        if name == "loreft" or name.startswith("loreft_"):
            ok = True
            bl = base["logits"]
            first_pos = pos.min(dim=0).values.min(dim=-1).values  # earliest position per row
            for b in range(ids.shape[0]):
                p0 = int(first_pos[b])
                n = int(am[b].sum())
                if comps[0] in ("block_output", "block_input", "mlp_output", "attention_output"):
                    before = maxdiff(T["logits"][b, :p0], bl[b, :p0])
                    after = (T["logits"][b, p0:n] - bl[b, p0:n]).abs().amax(-1)
                    ok &= before == 0.0 and bool((after > 1e-4).all())
            check(ok, f"{name}: logits == base strictly before the first intervened position, "
                      f"differ at/after it (valid tokens)")

    # saved adapters
    for sub, case in [("loreft", "loreft"), ("nodireft", "nodireft"), ("loreft_oldkeys", "loreft")]:
        cfg = json.load(open(os.path.join(d, "saved", sub, "config.json")))
        T = load_file(os.path.join(d, "cases", case + ".safetensors"))
        ok = True
        for i, k in enumerate(cfg["sorted_keys"]):
            sd = torch.load(os.path.join(d, "saved", sub, f"intkey_{k}.bin"), map_location="cpu",
                            weights_only=True)
            if case == "loreft":
                pairs = [("weight", "learned_source.weight"), ("bias", "learned_source.bias"),
                         ("rotate_layer", "rotate_layer")]
            else:
                pairs = [("learned_source.weight", "learned_source.weight"),
                         ("learned_source.bias", "learned_source.bias"),
                         ("proj_layer.weight", "proj_layer.weight")]
            for a, b in pairs:
                ok &= maxdiff(sd[a].float(), T[f"int{i}.{b}"]) < 1e-6
        check(ok, f"saved/{sub}: intkey tensors equal cases/{case} params ({cfg['sorted_keys'][0]})")

    # generation
    for name in man["generation"]:
        desc = json.load(open(os.path.join(d, "gen", name + ".json")))
        T = load_file(os.path.join(d, "gen", name + ".safetensors"))
        P = {k: v for k, v in T.items() if k.startswith("int0.") and k.count(".") >= 1
             and not k.endswith((".in", ".out"))}
        pr, pam = T["input_ids"], T["attention_mask"]
        plen = pr.shape[1]

        def greedy(intervene):
            seq, m = pr.clone(), pam.clone()
            for _ in range(desc["generate_kwargs"]["max_new_tokens"]):
                posid = (m.cumsum(-1) - 1).masked_fill(m == 0, 1)
                hs = install(model, desc["intervention_class"], P, desc["layers"],
                             desc["components"], T["positions"]) if intervene else []
                try:
                    with torch.no_grad():
                        lg = model(input_ids=seq, attention_mask=m, position_ids=posid,
                                   use_cache=False).logits
                finally:
                    for h in hs:
                        h.remove()
                nxt = lg[:, -1].argmax(-1, keepdim=True)
                seq = torch.cat([seq, nxt], 1)
                m = torch.cat([m, torch.ones_like(nxt)], 1)
            return seq
        g1, g0 = greedy(True), greedy(False)
        check(torch.equal(g1, T["generated_ids"]),
              f"{name}: no-cache greedy re-implementation reproduces generated ids "
              f"{T['generated_ids'][:, plen:].tolist()}")
        check(torch.equal(g0, T["base_generated_ids"]), f"{name}: base generation reproduced")
        if "prefill_position_ids" in T:
            exp = pam.cumsum(-1) - 1
            got = T["prefill_position_ids"].reshape(exp.shape)
            check(torch.equal(got[pam == 1], exp[pam == 1]),
                  f"{name}: HF prefill position_ids = cumsum(mask)-1 on real tokens")
        n_new = T["generated_ids"].shape[1] - plen
        check(all(not torch.equal(T["generated_ids"][r, plen:], T["base_generated_ids"][r, plen:])
                  for r in range(pr.shape[0])), f"{name}: intervention changes every row's ids")

    # NodiReFT training trajectory
    desc = json.load(open(os.path.join(d, "train", "train_nodireft.json")))
    T = load_file(os.path.join(d, "train", "train_nodireft.safetensors"))
    P = {k[len("init."):]: T[k].clone().requires_grad_(True) for k in T if k.startswith("init.")}
    opt = torch.optim.AdamW(list(P.values()), lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0)
    losses = []
    for _ in range(desc["steps"]):
        hs = install(model, desc["intervention_class"], P, desc["layers"], desc["components"],
                     T["positions"])
        try:
            loss = ce(model(input_ids=T["input_ids"], attention_mask=T["attention_mask"]).logits,
                      T["labels"])
        finally:
            for h in hs:
                h.remove()
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    ld = max(abs(a - b) for a, b in zip(losses, T["losses"].tolist()))
    check(ld < 1e-5, f"train_nodireft: losses reproduced (max diff {ld:.1e})")
    pd = max(maxdiff(P[k[len("final."):]], T[k]) for k in T if k.startswith("final."))
    check(pd < 1e-4, f"train_nodireft: final params reproduced (max diff {pd:.1e})")
    T = load_file(os.path.join(d, "train", "train_loreft.safetensors"))
    check(bool((T["losses"][1:] < T["losses"][:-1]).all()), "train_loreft: loss decreases")

    pos = json.load(open(os.path.join(d, "positions.json")))
    table = {(r["last_position"], r["positions"], r["share_weights"], r["num_interventions"],
              r["pad_mode"]): r["result"] for r in pos["rows"]}
    check(table[(5, "f3+l3", False, 2, "first")] == [[0, 1, -1], [3, 4, -1]]
          and table[(5, "f3+l3", True, 1, "first")] == [[0, 1, 3, 4, -1, -1]]
          and table[(20, "f3+l3", False, 4, "first")] == [[0, 1, 2], [0, 1, 2], [17, 18, 19], [17, 18, 19]],
          "positions.json agrees with REFERENCE.md 3.6")

    print(f"{len(FAILS)} failed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "fixtures"))
