#!/usr/bin/env bash
# The CUDA checks, in one short script: training smokes (fp16 with a gradient scaler, bf16), DDP over NCCL on one
# GPU, tiled evaluation on CUDA (part of each run's Set5 evaluation) and `lab bench P1,P2,P3` on the GPU.
# Without a CUDA device it says so and exits 0. Output lands in $OUT (default ./gpu-check); each step's status is
# printed, a failing step does not stop the others; the exit code is the number of failed steps.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LAB=${LAB:-.venv/bin/lab}
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export LAB_RUNS_DIR="$OUT/runs" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA device here: nothing checked"; exit 0
fi
"$PY" -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))" | tee "$OUT/device.txt"
failed=0
step() {  # step NAME COMMAND...: run it with a 4-minute limit, log it, report its status
  local name=$1; shift
  echo "== $name: $*"
  if timeout 240 "$@" >"$OUT/$name.log" 2>&1; then echo "   ok"; else echo "   FAILED (rc $?; tail of $OUT/$name.log):"
    tail -n 15 "$OUT/$name.log"; failed=$((failed + 1)); fi
}
SMOKE=(-p device cuda -p steps 60 -p valid_every 30 -p eval_sets Set5 -p num_workers 2)
step fp16 "$LAB" run train -p name gpu-fp16 -p amp fp16 "${SMOKE[@]}"
step bf16 "$LAB" run train -p name gpu-bf16 -p amp bf16 "${SMOKE[@]}"
# procs=1 trains without DDP (lab.distributed.launch calls the function in place): a one-rank NCCL group instead
step ddp_nccl "$PY" - <<'PY'
import os, torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from lab import models
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29517")
dist.init_process_group("nccl", rank=0, world_size=1)
net = DDP(models.create("edsr_baseline", scale=2).cuda(), device_ids=[0])
opt = torch.optim.Adam(net.parameters(), 1e-4)
x, y = torch.rand(4, 3, 48, 48, device="cuda"), torch.rand(4, 3, 96, 96, device="cuda")
for _ in range(3):
    loss = (net(x) - y).abs().mean(); opt.zero_grad(); loss.backward(); opt.step()
print("ddp nccl loss", float(loss)); dist.destroy_process_group()
PY
step time_budget "$LAB" run train -p name gpu-budget -p device cuda -p amp bf16 -p time_budget 0.5 -p eval_sets Set5
step bench "$LAB" bench P1,P2,P3 --json "$OUT/bench.json"
"$LAB" ledger --last 10 >"$OUT/ledger.txt" 2>&1 || true
cat "$OUT/ledger.txt"
echo "gpu_check: $failed step(s) failed"
exit "$failed"
