#!/bin/bash
# The first check on a GPU node (issue 15), the third of the three commands of a new node (README,
# "On a cluster": check, plan, this): the quick tier on CUDA with AMP, then DDP training steps per
# GPU count present, printing throughput (tuples/s) and peak memory. Nothing is downloaded. Takes a
# few minutes; output under ${OUT:-gpu-smoke}/. Stops with one line when something is missing.
#
#   bash scripts/gpu-smoke.sh            # or, on SLURM: srun --gres=gpu:2 bash scripts/gpu-smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${AVGAS_PYTHON:-.venv/bin/python}
OUT=${OUT:-gpu-smoke}
if ! command -v "$PY" > /dev/null 2>&1; then
    echo "gpu-smoke: no Python at $PY: make setup (or conda env create -f environment.yml), or set AVGAS_PYTHON" >&2
    exit 1
fi
mkdir -p "$OUT"
export YOLO_OFFLINE=1 HF_HUB_OFFLINE=1

$PY - <<'EOF'
import sys

import torch

if not torch.cuda.is_available():
    sys.exit(f"gpu-smoke: no GPU visible to torch {torch.__version__} (CUDA {torch.version.cuda}): this is the GPU "
             "check; run it on a GPU node (srun --gres=gpu:1 bash scripts/gpu-smoke.sh)")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"GPU {i}: {p.name}, {p.total_memory / 2**30:.0f} GiB")
EOF
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true

# 1. the quick tier end to end on CUDA, separator in bfloat16 autocast
start=$(date +%s)
$PY -m avgas run params/quick.yaml -p device=cuda -p amp=true -p name=gpu-smoke -p "run_root=$OUT" \
    > "$OUT/quick.log" 2>&1 || { tail -30 "$OUT/quick.log"; exit 1; }
echo "quick tier on CUDA with AMP: $(( $(date +%s) - start )) s ($OUT/gpu-smoke/results.json)"

# 2. DDP steps of the default-tier separator on 1..N GPUs: tuples/s and peak memory per rank
NGPU=$($PY -c "import torch; print(torch.cuda.device_count())")
for n in $(seq 1 "$NGPU"); do
    $PY -m torch.distributed.run --standalone --nproc_per_node="$n" scripts/ddp_step.py --steps 30 --batch 64 \
        2>&1 | grep -v Warning | tail -3
done
