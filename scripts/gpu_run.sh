#!/usr/bin/env bash
# One device session: CUDA correctness (gradient diff per op + smoke), then reft vs pyreft on CUDA
# in the same run, on a random SmolLM2-shaped model (f32; step time does not depend on weights).
set -u
cd "$(dirname "$0")/.."  # repository root (this script lives in scripts/ or .device/)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
B=.device/cuda/bin
for n in example-cuda_gradcheck example-cuda_smoke bench-train_step; do
  python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]+".xz"), open(sys.argv[1],"wb"))' "$B/$n" && chmod +x "$B/$n"
done
echo "== cuda_gradcheck"; timeout 60 "$B/example-cuda_gradcheck" 2>&1 | tail -45
echo "== cuda_smoke"; timeout 90 "$B/example-cuda_smoke" 2>&1 | tail -12
echo "== random SmolLM2-shaped model"
python3 - <<'PY'
import torch
from transformers import LlamaConfig, LlamaForCausalLM
cfg = LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                  num_key_value_heads=3, vocab_size=49152, rope_theta=100000.0, rms_norm_eps=1e-5,
                  tie_word_embeddings=True, max_position_embeddings=8192)
torch.manual_seed(0)
LlamaForCausalLM(cfg).save_pretrained("/tmp/smol-random", safe_serialization=True)
print("saved")
PY
echo "== reft bench (cuda)"; REFT_BENCH_MODEL=/tmp/smol-random REFT_BENCH_DEVICE=cuda timeout 150 "$B/bench-train_step" 2>&1 | tail -8
echo "== pyreft bench (cuda)"
mkdir -p /tmp/pyreft-site && pip install -q --no-deps --no-index --target /tmp/pyreft-site .device/wheels/*.whl 2>&1 | tail -2
PYTHONPATH=/tmp/pyreft-site timeout 150 python3 benches/pyreft_step.py /tmp/smol-random --device cuda 2>&1 | grep -E '^\{|Error|error' | tail -8
nvidia-smi --query-gpu=name,driver_version --format=csv
