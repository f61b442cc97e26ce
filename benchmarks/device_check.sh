#!/usr/bin/env bash
# One prepared run on a borrowed GPU machine: the device tests, the CUDA timings of issue 18
# and a bf16 / fp32 training check through torchrun (issue 14), in about 6 minutes.
#
# The machine has PyTorch, numba, scipy and h5py but not finufft or torchkbnufft: fetch
# their wheels here once (Python 3.12 on the device), into an ignored folder:
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 -d .whl finufft torchkbnufft
#
# then run it with the device tool: command "bash benchmarks/device_check.sh", carry
# [".whl"], timeout_s 540.  Results land in $OUT (device.txt, tests.log, timings.md,
# train.log); put the figures in benchmarks/README.md beside this command.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=src
OUT=${OUT:-/tmp/diffinv-device}
mkdir -p "$OUT"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=src:/tmp/site
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
  | tee -a "$OUT/device.txt"

# 1. the same correctness checks on the device (tests/test_device.py, the CT CUDA test)
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_device.py \
  "tests/operators/ct/test_operators.py::test_cuda_matches_cpu" 2>&1 | tee "$OUT/tests.log"

# 2. timings: CPU (package default threads) against the GPU, batch 1 and 8
timeout 200 python3 benchmarks/device_timings.py --device cuda 2>&1 | tee "$OUT/timings.md"

# 3. training on the GPU through torchrun: bf16 autocast (default) against fp32 (--no-amp),
#    64x64 `disks` images (cheap to draw, so the GPU step is what is timed), global batch 64,
#    default UNet; images/s from the training log
STEPS=${TRAIN_STEPS:-120} BATCH=${TRAIN_BATCH:-64} SIZE=${TRAIN_SIZE:-64}
for amp in bf16 fp32; do
  flag=""; [ "$amp" = fp32 ] && flag="--no-amp"
  timeout 100 torchrun --standalone --nproc_per_node 1 -m diffinv.cli train \
    --dataset disks --image-size "$SIZE" --steps "$STEPS" --batch-size "$BATCH" \
    --threads 4 --pool-size "${TRAIN_POOL:-512}" --log-every $((STEPS / 6)) \
    --checkpoint-every $((STEPS / 2)) --out "/tmp/train-$amp" $flag >"$OUT/train-$amp.log" 2>&1
  echo "exit $? ($amp)" | tee -a "$OUT/train.log"
  python3 - "$amp" "/tmp/train-$amp/training_log.jsonl" "$BATCH" <<'EOF' 2>&1 | tee -a "$OUT/train.log"
import json, sys
log = [json.loads(line) for line in open(sys.argv[2])]
first, last = log[0], log[-1]
rate = (last["step"] - first["step"]) * int(sys.argv[3]) / (last["wall_s"] - first["wall_s"])
print(f"{sys.argv[1]}: {rate:.0f} images/s (steps {first['step']}-{last['step']}), "
      f"loss {first['loss']:.3f} -> {last['loss']:.3f}")
EOF
done
