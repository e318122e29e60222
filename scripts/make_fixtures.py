#!/usr/bin/env python3
"""Parity fixtures for `reft` (the Rust re-implementation of pyreft / pyvene).

WHAT IT PRODUCES (under --out, default ./fixtures):

  manifest.json              format_version 1, library versions, seeds, stubbed modules,
                             sha256 + size of every file written, notes.
  tiny-llama/                random LlamaForCausalLM, float32, hidden 64, 3 layers, 4 heads,
                             2 kv heads (GQA, head_dim 16), intermediate 128, vocab 128,
                             rope_theta 10000, rms_norm_eps 1e-5, untied lm_head,
                             max_position_embeddings 128, eager attention, seed 0.
                             (config.json + model.safetensors via save_pretrained)
  tiny-llama-tied/           same but tie_word_embeddings=True and 2 layers (seed 0).
  cases/base.safetensors     the shared right-padded batch + base-model (no intervention)
                             logits/loss of tiny-llama, and tiny-llama-tied logits.
  cases/<name>.safetensors   one pyreft forward + backward per case (see cases/<name>.json):
                             inputs, positions, canonical intervention parameters, logits,
                             loss, gradients of the loss w.r.t. every canonical parameter,
                             and the gathered input/output of every intervention call.
  cases/<name>.json          description: class, layers, component, rank, pyvene keys,
                             tensor keys, canonical-parameter -> pyreft-parameter mapping.
  saved/<name>/              `reft_model.save(dir)` output (config.json + intkey_*.bin)
                             for the loreft and nodireft cases; saved/loreft_oldkeys/ is a
                             SYNTHESISED copy of saved/loreft with the pre-0.1.7 pyvene key
                             naming (layer.0.comp.block_output.unit.pos.nunit.1#0).
                             saved/index.json describes them.
  gen/<name>.safetensors     greedy generation with LoReFT on layer 1 (intervene_on_prompt)
  gen/<name>.json            for a left-padded batch of 2 prompts + the plain HF generate.
  train/<name>.safetensors   5 AdamW steps (lr 1e-2) on the shared batch: NodiReFT (losses
  train/<name>.json          + initial/final params, exact) and LoReFT (losses; initial and
                             final canonical params and the Householder state for reference).
  positions.json             pyreft.dataset.get_intervention_locations / parse_positions on
                             the REFERENCE.md section 3.6 table (plus a few extra rows).

Conventions: every float tensor is float32, every integer tensor int64, stored with
safetensors.torch.save_file. The canonical intervention parameters (prefix "int{i}." where i
is the index of the intervention in config / sorted_keys order):
  int{i}.rotate_layer            d x r, orthonormal columns (pyreft `rotate_layer.weight`,
                                 the *computed* orthogonal matrix; paper R = its transpose)
  int{i}.learned_source.weight   r x d (nn.Linear weight)     LoReFT/DiReFT/NoReFT/NodiReFT
  int{i}.learned_source.bias     r                            LoReFT/DiReFT/NoReFT/NodiReFT
  int{i}.learned_source          r (free vector b)            ConsReFT/LobiReFT
  int{i}.proj_layer.weight       r x d (W2, add_bias=False)   NoReFT/NodiReFT
Gradients are stored as "grad." + the parameter key. For rotate_layer it is the *ambient*
gradient dL/d(rotate_layer.weight) (the orthogonal parametrization is removed with
leave_parametrized=True before the forward, so the weight is a plain leaf with the same value).
int{i}.in / int{i}.out are the [batch, n_pos, d] tensors the intervention module received and
returned (the gathered hidden states before/after the edit).

HOW TO RUN
  python3 scripts/make_fixtures.py --out /tmp/fixtures            # CPU (default, intended)
  python3 scripts/make_fixtures.py --out /tmp/fixtures --device cuda
  On the offline GPU machine: bash scripts/run_fixtures_on_device.sh (installs the pyreft and
  pyvene wheels from .device/wheels without deps, then runs this into $OUT/fixtures).

CHECKING: scripts/check_fixtures.py FIXTURE_DIR re-derives every number above without pyreft
(plain torch hooks on the canonical parameters) and exits non-zero on any mismatch.

VERSIONS: written against pyreft 0.1.0 and pyvene 0.1.8 (PyPI wheels), torch 2.11,
transformers 5.17 (also works with transformers >= 4.48). pyreft's package __init__ pulls in
`datasets` (and pyvene pulls matplotlib/networkx/seaborn for unrelated analysis helpers); when
such an optional module is missing it is replaced by an inert stub module before importing
(recorded in manifest.json as "stubbed_modules"); nothing that is stubbed is used here.
Runs in ~10-30 s on CPU.
"""
import argparse
import copy
import hashlib
import importlib
import json
import os
import platform
import shutil
import sys
import types

FORMAT_VERSION = 1

# Seeds (all recorded in manifest.json)
SEED_MODEL = 0          # torch.manual_seed before building each tiny Llama
SEED_BATCH = 1          # torch.Generator seed for the shared batch ids
SEED_GEN_BATCH = 2      # torch.Generator seed for the generation prompts
SEED_CASE_BASE = 1000   # case k: torch.manual_seed(SEED_CASE_BASE + k) before building interventions
SEED_TRAIN_BASE = 2000  # training runs
SEED_GEN_INTV = 3004    # generation interventions (both variants; chosen so that the
                        # intervened greedy ids differ from the base ids in every row and
                        # the two position variants differ from each other)

D_MODEL = 64
RANK = 4
BATCH = 3
SEQ = 12
ROW_LENGTHS = [12, 9, 7]   # right padding: rows 1 and 2 end with pad (id 0) / mask 0
PROMPT_MASK = 5            # labels = -100 on the first 5 positions and on padding
# per-row positions for an intervention (distinct per row)
POS_A = [[1, 4], [0, 3], [2, 5]]
POS_B = [[4, 6], [3, 7], [0, 2]]   # third intervention of the multi case (overlaps POS_A)

# Optional third-party modules that pyreft/pyvene import at package import time but that are
# never used by this script. Only these may be stubbed.
STUBBABLE_ROOTS = {
    "datasets", "matplotlib", "seaborn", "networkx", "nnsight", "evaluate", "wandb",
    "sklearn", "plotnine", "ipywidgets", "accelerate", "sentencepiece", "tqdm", "gcsfs",
    "ydata_profiling", "jupyter", "google",
}
STUBBED = []


# ----------------------------------------------------------------------------- imports


class _StubModule(types.ModuleType):
    """Inert stand-in for a missing optional dependency. Attribute access yields a class
    that raises on instantiation, so `from X import Y` and `class Z(Y)` still import."""

    def __init__(self, name):
        super().__init__(name)
        self.__path__ = []  # behave like a package so submodules can be stubbed too
        self.__file__ = f"<stub {name}>"

    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        modname = self.__name__

        def _fail(*a, **k):
            raise ImportError(f"{modname}.{attr} is a stub (module {modname} not installed)")

        cls = type(attr, (object,), {"__init__": _fail, "__module__": modname})
        setattr(self, attr, cls)
        return cls


def _install_stub(name):
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        sub = ".".join(parts[:i])
        if sub not in sys.modules:
            sys.modules[sub] = _StubModule(sub)
            if i > 1:
                setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], sys.modules[sub])
            STUBBED.append(sub)


def _purge(prefixes):
    for m in list(sys.modules):
        if any(m == p or m.startswith(p + ".") for p in prefixes):
            del sys.modules[m]


def _import_stubbing(name, purge_prefixes):
    """importlib.import_module(name), replacing missing *optional* third-party modules (see
    STUBBABLE_ROOTS) by inert stubs and retrying; other import errors propagate."""
    for _ in range(25):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as e:
            root = (e.name or "").split(".")[0]
            if root not in STUBBABLE_ROOTS:
                raise
            _purge(purge_prefixes)
            _install_stub(e.name)
    return importlib.import_module(name)


CORE = ["pyreft.interventions", "pyreft.config", "pyreft.utils", "pyreft.reft_model"]


def import_pyreft():
    """Import pyreft (and pyvene), stubbing missing optional modules. If the package __init__
    still fails (e.g. the trainer module vs. a newer transformers), fall back to importing only
    the core modules we need (the approach of shared/bench/anchor_bench.py's import_pyreft)."""
    try:
        return _import_stubbing("pyreft", ["pyreft", "pyvene"]), "full"
    except Exception as e:
        print(f"full pyreft import failed ({e!r}); loading its core modules", file=sys.stderr)
    _purge(["pyreft"])
    base = next(os.path.join(p, "pyreft") for p in sys.path
                if os.path.isdir(os.path.join(p, "pyreft")))
    pkg = types.ModuleType("pyreft")
    pkg.__path__ = [base]
    sys.modules["pyreft"] = pkg
    itv = _import_stubbing("pyreft.interventions", CORE + ["pyvene"])
    for n in ["LoreftIntervention", "NoreftIntervention", "ConsreftIntervention",
              "LobireftIntervention", "DireftIntervention", "NodireftIntervention"]:
        setattr(pkg, n, getattr(itv, n))
    pkg.ReftConfig = _import_stubbing("pyreft.config", CORE).ReftConfig
    pkg.get_reft_model = _import_stubbing("pyreft.utils", CORE).get_reft_model
    pkg.ReftModel = _import_stubbing("pyreft.reft_model", CORE).ReftModel
    return pkg, "core-only"


def get_location_fns():
    """pyreft.dataset.{get_intervention_locations, parse_positions}, else a re-implementation."""
    try:
        ds = _import_stubbing("pyreft.dataset", ["pyreft.dataset"])
        return ds.get_intervention_locations, ds.parse_positions, "pyreft.dataset"
    except Exception as e:  # only when the dataset module cannot import at all
        print(f"pyreft.dataset import failed ({e!r}); using the re-implementation", file=sys.stderr)
        return _gil_reimpl, _parse_positions_reimpl, "reimplementation (pyreft.dataset unavailable)"


def _parse_positions_reimpl(positions):
    first_n, last_n = 0, 0
    if "+" in positions:
        first_n = int(positions.split("+")[0].strip("f"))
        last_n = int(positions.split("+")[1].strip("l"))
    elif "f" in positions:
        first_n = int(positions.strip("f"))
    elif "l" in positions:
        last_n = int(positions.strip("l"))
    return first_n, last_n


def _gil_reimpl(**kw):
    share = kw.get("share_weights", False)
    L = kw["last_position"]
    if "positions" in kw:
        F, M = _parse_positions_reimpl(kw["positions"])
    else:
        F, M = kw["first_n"], kw["last_n"]
    n = kw["num_interventions"]
    pad = -1 if kw.get("pad_mode", "first") == "first" else L
    f, s = min(L // 2, F), min(L // 2, M)
    if share or f == 0 or s == 0:
        lst = list(range(f)) + list(range(L - s, L)) + [pad] * ((F - f) + (M - s))
        return [lst] * n
    left = list(range(f)) + [pad] * (F - f)
    right = list(range(L - s, L)) + [pad] * (M - s)
    if len(left) > len(right):
        right += [pad] * (len(left) - len(right))
    else:
        left += [pad] * (len(right) - len(left))
    return [left] * (n // 2) + [right] * (n // 2)


# ----------------------------------------------------------------------------- helpers


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def to_store(t):
    import torch
    t = t.detach().to("cpu")
    if t.is_floating_point():
        t = t.to(torch.float32)
    else:
        t = t.to(torch.int64)
    return t.contiguous()


def save_tensors(path, tensors):
    from safetensors.torch import save_file
    save_file({k: to_store(v) for k, v in tensors.items()}, path)


def dump_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write("\n")


def make_llama(n_layers, tied, device):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(
        vocab_size=128, hidden_size=D_MODEL, intermediate_size=128,
        num_hidden_layers=n_layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=128, rope_theta=10000.0, rms_norm_eps=1e-5,
        tie_word_embeddings=tied, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        attention_bias=False, mlp_bias=False, hidden_act="silu", initializer_range=0.02,
    )
    cfg._attn_implementation = "eager"
    torch.manual_seed(SEED_MODEL)
    try:
        model = LlamaForCausalLM(cfg, attn_implementation="eager")
    except TypeError:
        model = LlamaForCausalLM(cfg)
    model = model.to(device=device, dtype=torch.float32)
    try:
        model.set_attn_implementation("eager")
    except Exception:
        model.config._attn_implementation = "eager"
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    # no stop token during the fixture generations (ids are sampled from [3,128))
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model


def save_llama(model, path):
    os.makedirs(path, exist_ok=True)
    try:
        model.save_pretrained(path, safe_serialization=True)
    except TypeError:
        model.save_pretrained(path)
    # make sure the saved config records eager attention for loaders that care
    cfg_path = os.path.join(path, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg.setdefault("attn_implementation", "eager")
    dump_json(cfg_path, cfg)
    # generation_config.json is irrelevant for the fixtures; keep it if written


def shared_batch(device):
    import torch
    g = torch.Generator(device="cpu").manual_seed(SEED_BATCH)
    ids = torch.randint(3, 128, (BATCH, SEQ), generator=g)
    am = torch.zeros(BATCH, SEQ, dtype=torch.int64)
    for r, n in enumerate(ROW_LENGTHS):
        am[r, :n] = 1
    ids = ids.masked_fill(am == 0, 0)
    labels = ids.clone()
    labels[:, :PROMPT_MASK] = -100
    labels = labels.masked_fill(am == 0, -100)
    return ids.to(device), am.to(device), labels.to(device)


def hf_shifted_ce(logits, labels):
    import torch
    lg = logits[:, :-1, :].reshape(-1, logits.shape[-1]).float()
    lb = labels[:, 1:].reshape(-1)
    return torch.nn.functional.cross_entropy(lg, lb, ignore_index=-100, reduction="mean")


INTERVENTIONS = {
    # name: (class name, extra kwargs)
    "loreft": ("LoreftIntervention", {}),
    "nodireft": ("NodireftIntervention", {"add_bias": False}),
    "direft": ("DireftIntervention", {}),
    "noreft": ("NoreftIntervention", {"add_bias": False}),
    "consreft": ("ConsreftIntervention", {}),
    "lobireft": ("LobireftIntervention", {}),
}


def build_reft(pyreft, model, cls_name, extra, layers, components, seed):
    import torch
    torch.manual_seed(seed)
    cls = getattr(pyreft, cls_name)
    reps = []
    for layer, comp in zip(layers, components):
        itv = cls(embed_dim=D_MODEL, low_rank_dimension=RANK, dtype=torch.float32,
                  dropout=0.0, act_fn=None, **extra)
        reps.append({"layer": layer, "component": comp, "low_rank_dimension": RANK,
                     "intervention": itv})
    cfg = pyreft.ReftConfig(representations=reps)
    reft = pyreft.get_reft_model(model, cfg)
    keys = list(reft.sorted_keys)
    itvs = [reft.interventions[k] for k in keys]
    itvs = [v[0] if isinstance(v, (tuple, list)) else v for v in itvs]  # old pyvene: (itv, hook)
    return reft, keys, itvs


def canonical_params(itv):
    """name -> (tensor, pyreft attribute path, shape doc)."""
    import torch
    out = {}
    if hasattr(itv, "rotate_layer"):
        out["rotate_layer"] = (itv.rotate_layer.weight, "rotate_layer.weight",
                               "d x r, orthonormal columns")
    ls = getattr(itv, "learned_source", None)
    if isinstance(ls, torch.nn.Linear):
        out["learned_source.weight"] = (ls.weight, "learned_source.weight", "r x d")
        out["learned_source.bias"] = (ls.bias, "learned_source.bias", "r")
    elif isinstance(ls, torch.nn.Parameter):
        out["learned_source"] = (ls, "learned_source", "r (free vector b)")
    if hasattr(itv, "proj_layer"):
        out["proj_layer.weight"] = (itv.proj_layer.weight, "proj_layer.weight", "r x d")
        if itv.proj_layer.bias is not None:
            out["proj_layer.bias"] = (itv.proj_layer.bias, "proj_layer.bias", "r")
    return out


def unparametrize(itv):
    import torch
    from torch.nn.utils import parametrize
    if hasattr(itv, "rotate_layer") and parametrize.is_parametrized(itv.rotate_layer, "weight"):
        parametrize.remove_parametrizations(itv.rotate_layer, "weight", leave_parametrized=True)
        itv.rotate_layer.weight.requires_grad_(True)


def record_io(itvs):
    """Forward hooks on the intervention modules: record (input base, output) of each call."""
    calls = {i: [] for i in range(len(itvs))}
    handles = []
    for i, itv in enumerate(itvs):
        def hook(mod, args, kwargs, output, i=i):
            base = args[0] if len(args) else kwargs.get("base")
            calls[i].append((base.detach().clone(), output.detach().clone()))
        handles.append(itv.register_forward_hook(hook, with_kwargs=True))
    return calls, handles


def ortho_err(R):
    import torch
    I = torch.eye(R.shape[1], dtype=torch.float64)
    return float((R.detach().double().T @ R.detach().double() - I).abs().max())


def locs_tensor(locs):
    import torch
    return torch.tensor(locs, dtype=torch.int64)  # [n_interventions][batch][n_pos]


# ----------------------------------------------------------------------------- cases


def run_case(pyreft, model, name, cls_name, extra, layers, components, locs, seed, batch,
             out_dir, save_to=None):
    import torch
    ids, am, labels = batch
    reft, keys, itvs = build_reft(pyreft, model, cls_name, extra, layers, components, seed)
    saved = None
    if save_to is not None:  # save first, with pyreft's own (parametrized) modules
        reft.save(save_to)
        saved = save_to
    for itv in itvs:
        unparametrize(itv)
        itv.eval()  # dropout is 0 anyway
    params = {}
    pmap = {}
    for i, itv in enumerate(itvs):
        for cname, (t, path, doc) in canonical_params(itv).items():
            params[f"int{i}.{cname}"] = t
            pmap[f"int{i}.{cname}"] = {"intervention": i, "pyvene_key": keys[i],
                                       "pyreft_attr": path, "shape": list(t.shape), "doc": doc}
    calls, handles = record_io(itvs)
    try:
        _, cf = reft({"input_ids": ids, "attention_mask": am},
                     unit_locations={"sources->base": (None, locs)}, labels=labels)
    finally:
        for h in handles:
            h.remove()
    logits = cf.logits.float()
    loss = cf.loss
    manual = hf_shifted_ce(logits, labels)
    assert torch.allclose(loss, manual, atol=1e-5, rtol=1e-5), (loss, manual)
    names = list(params)
    grads = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
    tensors = {"input_ids": ids, "attention_mask": am, "labels": labels,
               "positions": locs_tensor(locs), "logits": logits, "loss": loss.detach().reshape(())}
    for n in names:
        tensors[n] = params[n]
    for n, g in zip(names, grads):
        tensors["grad." + n] = g if g is not None else torch.zeros_like(params[n])
    io_keys = []
    for i, cl in calls.items():
        assert len(cl) == 1, f"intervention {i} called {len(cl)} times"
        tensors[f"int{i}.in"], tensors[f"int{i}.out"] = cl[0]
        io_keys += [f"int{i}.in", f"int{i}.out"]
    save_tensors(os.path.join(out_dir, f"{name}.safetensors"), tensors)
    ortho = {f"int{i}": ortho_err(itv.rotate_layer.weight) for i, itv in enumerate(itvs)
             if hasattr(itv, "rotate_layer")}
    desc = {
        "name": name,
        "intervention_class": cls_name,
        "intervention_kwargs": {"embed_dim": D_MODEL, "low_rank_dimension": RANK,
                                "dtype": "float32", "dropout": 0.0, "act_fn": None, **extra},
        "model": "tiny-llama",
        "layers": layers,
        "components": components,
        "unit": "pos",
        "rank": RANK,
        "pyvene_keys": keys,
        "init_seed": seed,
        "positions_shape": list(locs_tensor(locs).shape),
        "positions_layout": "[n_interventions][batch][n_pos]; passed as "
                            "unit_locations={'sources->base': (None, positions)}",
        "application_order": "interventions fire in config order (sorted_keys); several on "
                             "one module are applied sequentially in place",
        "tensor_keys": {k: list(to_store(v).shape) for k, v in tensors.items()},
        "param_map": pmap,
        "grad_note": "grad.<param> = dL/d<param>, L = HF shifted cross-entropy (mean over "
                     "labels != -100). grad.int{i}.rotate_layer is the ambient gradient w.r.t. "
                     "the d x r matrix (parametrization removed, leave_parametrized=True).",
        "io_note": "int{i}.in / int{i}.out: [batch, n_pos, d] tensor given to / returned by the "
                   "intervention (gathered at the positions)",
        "loss": loss.item(),
        "rotation_orthonormality_max_abs_err": ortho,
        "base_logits": "cases/base.safetensors:logits (same batch, no intervention)",
        "saved_adapter": None if saved is None else os.path.relpath(saved, os.path.dirname(out_dir)),
    }
    dump_json(os.path.join(out_dir, f"{name}.json"), desc)
    return desc


def synth_old_keys(src, dst):
    """Copy a saved adapter, renaming keys to the pre-0.1.7 pyvene dotted form."""
    if os.path.exists(dst):
        shutil.rmtree(dst)
    os.makedirs(dst)
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)

    def old(k):
        # layer_0_comp_block_output_unit_pos_nunit_1#0 -> layer.0.comp.block_output.unit.pos.nunit.1#0
        body, _, n = k.partition("#")
        comp_start = body.index("_comp_") + len("_comp_")
        unit_start = body.index("_unit_")
        layer = body[len("layer_"):body.index("_comp_")]
        comp = body[comp_start:unit_start]
        rest = body[unit_start + len("_unit_"):]
        unit, _, nunit = rest.rpartition("_nunit_")
        return f"layer.{layer}.comp.{comp}.unit.{unit}.nunit.{nunit}#{n}"

    mapping = {k: old(k) for k in cfg["sorted_keys"]}
    for k, v in mapping.items():
        shutil.copyfile(os.path.join(src, f"intkey_{k}.bin"), os.path.join(dst, f"intkey_{v}.bin"))
    cfg["sorted_keys"] = [mapping[k] for k in cfg["sorted_keys"]]
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)  # same layout as save_pretrained
        f.write("\n")
    return mapping


# ----------------------------------------------------------------------------- generation


def run_generation(pyreft, model, out_dir, device):
    import torch
    g = torch.Generator(device="cpu").manual_seed(SEED_GEN_BATCH)
    lens = [5, 8]
    T = max(lens)
    prompts = torch.zeros(2, T, dtype=torch.int64)
    am = torch.zeros(2, T, dtype=torch.int64)
    raw = []
    for r, n in enumerate(lens):
        p = torch.randint(3, 128, (n,), generator=g)
        raw.append(p)
        prompts[r, T - n:] = p   # left padding with pad id 0
        am[r, T - n:] = 1
    prompts, am = prompts.to(device), am.to(device)
    gen_kw = dict(max_new_tokens=6, do_sample=False, pad_token_id=0, eos_token_id=None,
                  num_beams=1)

    # what position_ids / cache_position HF feeds the decoder during prefill
    seen = []

    def pre(mod, args, kwargs):
        seen.append({k: kwargs[k].detach().cpu().clone() for k in ("position_ids", "cache_position")
                     if isinstance(kwargs.get(k), torch.Tensor)})
    hdl = model.model.register_forward_pre_hook(pre, with_kwargs=True)
    try:
        with torch.no_grad():
            base_out = model.generate(input_ids=prompts, attention_mask=am, **gen_kw)
    finally:
        hdl.remove()
    base_ids = base_out if isinstance(base_out, torch.Tensor) else base_out.sequences
    prefill = seen[0] if seen else {}

    results = []
    variants = [
        # name, per-row positions in the UNPADDED prompt
        ("gen_loreft_last", [[n - 1] for n in lens]),
        ("gen_loreft_first_last", [[0, n - 1] for n in lens]),
    ]
    for vi, (name, rel) in enumerate(variants):
        reft, keys, itvs = build_reft(pyreft, model, "LoreftIntervention", {}, [1],
                                      ["block_output"], SEED_GEN_INTV)
        shifted = [[p + (T - n) for p in rel[r]] for r, n in enumerate(lens)]
        locs = [shifted]  # [n_interventions=1][batch][n_pos]
        params = {}
        for cname, (t, _, _) in canonical_params(itvs[0]).items():
            params[f"int0.{cname}"] = t.detach().clone()
        calls, handles = record_io(itvs)
        try:
            with torch.no_grad():
                _, out = reft.generate({"input_ids": prompts, "attention_mask": am},
                                       unit_locations={"sources->base": (None, locs)},
                                       intervene_on_prompt=True, **gen_kw)
        finally:
            for h in handles:
                h.remove()
        ids = out if isinstance(out, torch.Tensor) else out.sequences
        assert ids.shape == (2, T + 6), ids.shape
        n_calls = len(calls[0])
        tensors = {"input_ids": prompts, "attention_mask": am, "positions": locs_tensor(locs),
                   "generated_ids": ids, "base_generated_ids": base_ids, **params}
        if n_calls:
            tensors["int0.in"], tensors["int0.out"] = calls[0][0]
        for k, v in prefill.items():
            tensors[f"prefill_{k}"] = v
        save_tensors(os.path.join(out_dir, f"{name}.safetensors"), tensors)
        desc = {
            "name": name, "intervention_class": "LoreftIntervention", "model": "tiny-llama",
            "layers": [1], "components": ["block_output"], "rank": RANK, "pyvene_keys": keys,
            "init_seed": SEED_GEN_INTV,
            "prompt_lengths": lens, "padding": "left (pad id 0, attention_mask 0)",
            "positions_unpadded": rel,
            "positions_note": "positions = unpadded positions + left-pad amount per row; "
                              "[n_interventions][batch][n_pos]",
            "generate_kwargs": {"max_new_tokens": 6, "do_sample": False, "num_beams": 1,
                                "pad_token_id": 0, "eos_token_id": None,
                                "intervene_on_prompt": True},
            "intervention_calls": n_calls,
            "semantics": "intervention applied once, on the prefill (prompt) forward; decode "
                         "steps reuse the intervened KV cache and are not intervened",
            "prefill_position_ids_note": "prefill_position_ids / prefill_cache_position are the "
                                         "kwargs HF generate passed to LlamaModel on the prefill "
                                         "call (valid positions: cumsum(mask) - 1; the value at "
                                         "padded positions is irrelevant, they are masked)",
            "generated_ids_note": "full sequences: prompt (left padded) followed by 6 new tokens",
            "base_generated_ids_note": "same prompts, plain model.generate without intervention",
            "tensor_keys": {k: list(to_store(v).shape) for k, v in tensors.items()},
        }
        dump_json(os.path.join(out_dir, f"{name}.json"), desc)
        results.append(desc)
    return results


# ----------------------------------------------------------------------------- training


def run_training(pyreft, model, out_dir, batch, locs):
    import torch
    ids, am, labels = batch
    out = []
    for ti, (name, cls_name, extra) in enumerate([
            ("train_nodireft", "NodireftIntervention", {"add_bias": False}),
            ("train_loreft", "LoreftIntervention", {})]):
        seed = SEED_TRAIN_BASE + ti
        reft, keys, itvs = build_reft(pyreft, model, cls_name, extra, [0, 2],
                                      ["block_output"] * 2, seed)
        init = {}
        for i, itv in enumerate(itvs):
            for cname, (t, _, _) in canonical_params(itv).items():
                init[f"init.int{i}.{cname}"] = t.detach().clone()
            if hasattr(itv, "rotate_layer"):
                pz = itv.rotate_layer.parametrizations.weight
                init[f"init.int{i}.householder_original"] = pz.original.detach().clone()
                base = getattr(pz[0], "base", None)
                if base is not None:
                    init[f"init.int{i}.householder_base"] = base.detach().clone()
        trainable = [p for itv in itvs for p in itv.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(trainable, lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                                weight_decay=0.0)
        losses = []
        for step in range(5):
            _, cf = reft({"input_ids": ids, "attention_mask": am},
                         unit_locations={"sources->base": (None, locs)}, labels=labels)
            losses.append(cf.loss.item())
            opt.zero_grad(set_to_none=True)
            cf.loss.backward()
            opt.step()
        with torch.no_grad():
            _, cf = reft({"input_ids": ids, "attention_mask": am},
                         unit_locations={"sources->base": (None, locs)}, labels=labels)
            final_loss = float(cf.loss)
        final = {}
        for i, itv in enumerate(itvs):
            for cname, (t, _, _) in canonical_params(itv).items():
                final[f"final.int{i}.{cname}"] = t.detach().clone()
        tensors = {"input_ids": ids, "attention_mask": am, "labels": labels,
                   "positions": locs_tensor(locs),
                   "losses": torch.tensor(losses, dtype=torch.float32),
                   "final_loss": torch.tensor(final_loss, dtype=torch.float32), **init, **final}
        save_tensors(os.path.join(out_dir, f"{name}.safetensors"), tensors)
        desc = {
            "name": name, "intervention_class": cls_name, "model": "tiny-llama",
            "layers": [0, 2], "components": ["block_output"] * 2, "rank": RANK,
            "pyvene_keys": keys, "init_seed": seed,
            "optimizer": {"type": "torch.optim.AdamW", "lr": 1e-2, "betas": [0.9, 0.999],
                          "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False,
                          "grad_clipping": None, "schedule": "constant"},
            "steps": 5,
            "losses_note": "losses[k] = loss before optimizer step k (k=0..4); final_loss = "
                           "loss after the 5th step",
            "losses": losses, "final_loss": final_loss,
            "trainable_parameters_per_intervention": [n for n, p in itvs[0].named_parameters()
                                                      if p.requires_grad],
            "exact_match_expected": cls_name == "NodireftIntervention",
            "note": ("NodiReFT has no orthogonality: an implementation starting from init.* with "
                     "the same AdamW must reproduce losses and final.* (float32 tolerance). "
                     "proj_layer has no bias (add_bias=False).")
            if cls_name == "NodireftIntervention" else
            ("LoReFT trains R through torch's orthogonal parametrization (Householder "
             "trivialisation: weight = base @ householder_product(original), base fixed d x d). "
             "The trainable tensor is householder_original, not rotate_layer, so an "
             "implementation with a different parametrization matches only the first loss "
             "exactly. init.int{i}.householder_* are given for implementations that replicate "
             "it; final.* are informational."),
            "tensor_keys": {k: list(to_store(v).shape) for k, v in tensors.items()},
        }
        dump_json(os.path.join(out_dir, f"{name}.json"), desc)
        out.append(desc)
    return out


# ----------------------------------------------------------------------------- positions


POSITION_TABLE = [
    # (last_position, positions, share_weights, num_interventions, pad_mode)  REFERENCE 3.6
    (20, "f3+l3", True, 2, "first"),
    (20, "f3+l3", True, 2, "last"),
    (20, "f3+l3", False, 4, "first"),
    (5, "f3+l3", False, 2, "first"),
    (5, "f3+l3", False, 2, "last"),
    (5, "f3+l3", True, 1, "first"),
    (20, "f2", False, 3, "first"),
    (20, "l1", False, 1, "first"),
    # extra rows
    (20, "l1", False, 1, "last"),
    (7, "f5+l1", False, 2, "first"),
    (7, "f1+l5", False, 2, "last"),
    (3, "f1+l1", False, 2, "first"),
    (1, "f1+l1", False, 2, "first"),
    (1, "l1", False, 1, "first"),
    (10, "f7+l7", False, 2, "first"),
    (30, "f7+l7", False, 2, "first"),
    (30, "f7+l7", True, 1, "last"),
    (4, "f2+l2", True, 2, "last"),
]


def run_positions(path):
    gil, parse, source = get_location_fns()
    rows = []
    for L, pos, share, n, pad in POSITION_TABLE:
        res = gil(last_position=L, positions=pos, share_weights=share,
                  num_interventions=n, pad_mode=pad)
        rows.append({"last_position": L, "positions": pos, "share_weights": share,
                     "num_interventions": n, "pad_mode": pad, "result": res})
    parsed = {s: list(parse(s)) for s in ["f3+l3", "f2", "l1", "f1+l1", "f7+l7", "f0+l4", "l10"]}
    dump_json(path, {"source": source,
                     "call": "get_intervention_locations(last_position=L, positions=pos, "
                             "share_weights=share, num_interventions=n, pad_mode=pad)",
                     "rows": rows, "parse_positions": parsed})
    return source


# ----------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="fixtures")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--encoders-only", action="store_true",
                    help="write only the encoder fixtures (OUT/encoders), leave the rest alone")
    a = ap.parse_args()
    if a.device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    device = torch.device(a.device)

    pyreft, import_mode = import_pyreft()
    import pyvene  # noqa: F401  (imported by pyreft already)
    import transformers
    import safetensors

    out = os.path.abspath(a.out)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_encoder_fixtures
    if a.encoders_only:
        shutil.rmtree(os.path.join(out, "encoders"), ignore_errors=True)
        make_encoder_fixtures.run(sys.modules[__name__], pyreft, out)
        print(f"wrote encoder fixtures to {out}/encoders")
        return
    if os.path.exists(out):
        shutil.rmtree(out)
    for sub in ["cases", "saved", "gen", "train"]:
        os.makedirs(os.path.join(out, sub))

    # 1. models
    model = make_llama(3, False, device)
    save_llama(model, os.path.join(out, "tiny-llama"))
    tied = make_llama(2, True, device)
    assert tied.lm_head.weight.data_ptr() == tied.model.embed_tokens.weight.data_ptr()
    save_llama(tied, os.path.join(out, "tiny-llama-tied"))

    batch = shared_batch(device)
    ids, am, labels = batch
    with torch.no_grad():
        bo = model(input_ids=ids, attention_mask=am, labels=labels)
        to = tied(input_ids=ids, attention_mask=am, labels=labels)
    save_tensors(os.path.join(out, "cases", "base.safetensors"), {
        "input_ids": ids, "attention_mask": am, "labels": labels,
        "logits": bo.logits.float(), "loss": bo.loss.reshape(()),
        "tied_logits": to.logits.float(), "tied_loss": to.loss.reshape(()),
    })
    dump_json(os.path.join(out, "cases", "base.json"), {
        "name": "base", "model": "tiny-llama (logits/loss), tiny-llama-tied (tied_logits/tied_loss)",
        "row_lengths": ROW_LENGTHS, "padding": "right, pad id 0, attention_mask 0",
        "labels": f"input_ids with -100 on the first {PROMPT_MASK} positions and on padding",
        "loss": "HF shifted cross-entropy, mean over labels != -100",
        "logits_note": "logits at padded positions are whatever HF eager attention produces; "
                       "compare on attention_mask == 1 positions",
        "base_loss": float(bo.loss), "tied_loss": float(to.loss),
        "tensor_keys": {"input_ids": [BATCH, SEQ], "attention_mask": [BATCH, SEQ],
                        "labels": [BATCH, SEQ], "logits": [BATCH, SEQ, 128], "loss": [],
                        "tied_logits": [BATCH, SEQ, 128], "tied_loss": []},
    })

    # 2./3. forward + gradient cases, saved adapters
    cases = []
    k = 0
    for name, (cls_name, extra) in INTERVENTIONS.items():
        save_to = os.path.join(out, "saved", name) if name in ("loreft", "nodireft") else None
        cases.append(run_case(pyreft, model, name, cls_name, extra, [0, 2], ["block_output"] * 2,
                              [POS_A, POS_A], SEED_CASE_BASE + k, batch,
                              os.path.join(out, "cases"), save_to))
        k += 1
    cases.append(run_case(pyreft, model, "loreft_multi", "LoreftIntervention", {}, [0, 2, 0],
                          ["block_output"] * 3, [POS_A, POS_A, POS_B], SEED_CASE_BASE + k, batch,
                          os.path.join(out, "cases")))
    k += 1
    from pyvene.models.llama.modelings_intervenable_llama import llama_type_to_module_mapping
    skipped = []
    for comp in ["block_input", "mlp_output", "attention_output"]:
        if comp not in llama_type_to_module_mapping:
            skipped.append(comp)
            continue
        cases.append(run_case(pyreft, model, f"loreft_{comp}", "LoreftIntervention", {}, [0, 2],
                              [comp] * 2, [POS_A, POS_A], SEED_CASE_BASE + k, batch,
                              os.path.join(out, "cases")))
        k += 1
    old_map = synth_old_keys(os.path.join(out, "saved", "loreft"),
                             os.path.join(out, "saved", "loreft_oldkeys"))
    dump_json(os.path.join(out, "saved", "index.json"), {
        "loreft": {"written_by": "reft_model.save(dir) (pyreft/pyvene)",
                   "parameters_equal": "cases/loreft.safetensors int{i}.* "
                                       "(i = index in config.json sorted_keys)"},
        "nodireft": {"written_by": "reft_model.save(dir) (pyreft/pyvene)",
                     "parameters_equal": "cases/nodireft.safetensors int{i}.*",
                     "note": "NodireftIntervention(add_bias=False); add_bias/dtype/act_fn are not "
                             "stored in config.json, a pyreft load needs them supplied"},
        "loreft_oldkeys": {"written_by": "SYNTHESISED by make_fixtures.py from saved/loreft: "
                                         "intkey files and sorted_keys renamed to the "
                                         "pre-0.1.7 pyvene dotted key naming; contents identical",
                           "key_map": old_map},
    })

    # 4. generation
    gens = run_generation(pyreft, model, os.path.join(out, "gen"), device)

    # 5. training
    trains = run_training(pyreft, model, os.path.join(out, "train"), batch, [POS_A, POS_A])

    # 6. positions
    pos_source = run_positions(os.path.join(out, "positions.json"))

    # 7. encoders (tiny BERT / RoBERTa classifiers; see make_encoder_fixtures.py)
    make_encoder_fixtures.run(sys.modules[__name__], pyreft, out)

    # manifest
    def ver(dist):
        try:
            from importlib.metadata import version
            return version(dist)
        except Exception:
            return None
    files = []
    for root, _, fs in os.walk(out):
        for fn in sorted(fs):
            p = os.path.join(root, fn)
            files.append({"path": os.path.relpath(p, out), "bytes": os.path.getsize(p),
                          "sha256": sha256(p)})
    files.sort(key=lambda r: r["path"])
    manifest = {
        "format_version": FORMAT_VERSION,
        "generator": "scripts/make_fixtures.py",
        "versions": {
            "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__,
            "safetensors": getattr(safetensors, "__version__", ver("safetensors")),
            "pyreft": ver("pyreft"), "pyvene": ver("pyvene"), "numpy": ver("numpy"),
            "pyreft_location": os.path.dirname(pyreft.__path__[0]) if hasattr(pyreft, "__path__") else None,
            "pyreft_commit": None, "pyvene_commit": None,
            "commit_note": "installed from PyPI wheels (pyreft 0.1.0 / pyvene 0.1.8); the wheels "
                           "carry no commit id",
        },
        "platform": platform.platform(), "device": str(device),
        "torch_deterministic": True, "dtype": "float32",
        "pyreft_import": import_mode, "stubbed_modules": STUBBED,
        "positions_source": pos_source,
        "seeds": {"model": SEED_MODEL, "batch": SEED_BATCH, "gen_batch": SEED_GEN_BATCH,
                  "case_base": SEED_CASE_BASE, "train_base": SEED_TRAIN_BASE,
                  "gen_intervention": SEED_GEN_INTV},
        "batch": {"shape": [BATCH, SEQ], "row_lengths": ROW_LENGTHS, "pad_id": 0,
                  "ids_range": [3, 128], "label_mask_prefix": PROMPT_MASK},
        "cases": [c["name"] for c in cases], "skipped_components": skipped,
        "generation": [g["name"] for g in gens], "training": [t["name"] for t in trains],
        "notes": [
            "saved/loreft_oldkeys is synthesised (renamed keys), not written by old pyvene",
            "rotate_layer tensors are d x r with orthonormal columns; paper R = rotate_layer^T",
            "cases/*: the orthogonal parametrization is removed (leave_parametrized=True) "
            "before the forward so grad.*.rotate_layer is the ambient gradient",
            "pyvene 0.1.8 (PyPI) differs from pyvene HEAD 9e33390 (used for REFERENCE.md) only in "
            "GQA dimension mappings of key/value/head_* components and a few non-ReFT "
            "intervention branches; none of the components used here is affected",
            "pyreft ReftModel.load rebuilds interventions from config.json with the default "
            "bf16 dtype (dtype/add_bias/act_fn are not saved): the intkey_*.bin tensors are "
            "float32 and must be loaded as such",
        ],
        "files": files,
    }
    dump_json(os.path.join(out, "manifest.json"), manifest)
    total = sum(f["bytes"] for f in files)
    print(f"wrote {len(files)} files, {total / 1024:.1f} KiB to {out}")
    print(json.dumps({"versions": manifest["versions"], "stubbed": STUBBED,
                      "pyreft_import": import_mode, "positions_source": pos_source}))
    for c in cases:
        print(f"case {c['name']:<26} loss {c['loss']:.6f}")
    for t in trains:
        print(f"{t['name']:<26} losses {['%.5f' % x for x in t['losses']]} final {t['final_loss']:.5f}")


if __name__ == "__main__":
    main()
