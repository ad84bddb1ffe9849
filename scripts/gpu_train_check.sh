#!/usr/bin/env bash
# Check `mllm-explain train`'s CUDA path in one go on a machine with a GPU (issue 12); about 4-6 minutes
# on one H100/H200, well under 10.  From the repository root:
#
#     bash scripts/gpu_train_check.sh [OUT_DIR]          # default OUT_DIR: $OUT or /tmp, + /gpu-train-check
#
# 1. From scratch on CUDA (bfloat16 autocast, 8 data workers, batches x4), a short schedule: 100
#    text-only + 600 image steps.  The first call stops itself after 45 s (--max-seconds, checkpointed);
#    the same command then resumes and finishes: the CUDA checkpoint/resume path.
# 2. The continuation that made the shared GPU checkpoint's stage 2 (--first-stage 2 --batch-mult 4
#    --lr 3e-4 --language-lr 0.1 --workers 15), 300 steps from the bundled model.
# 3. Loads both results on the CPU and captions a validation scene, and prints steps/s of every part.
#
# CHECK_DEVICE=cpu CHECK_QUICK=1 runs the same script logic on a CPU in a minute or two (a dry run of the
# script, tiny schedules; its speeds mean nothing).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code, installed or not
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
DIR="${1:-${OUT:-/tmp}/gpu-train-check}"
DEVICE="${CHECK_DEVICE:-cuda}"
rm -rf "$DIR" && mkdir -p "$DIR"

if [ -n "${CHECK_QUICK:-}" ]; then
    SCRATCH=(--text-steps 2 --steps 6 --eval-every 3 --eval-scenes 2 --checkpoint-every 3 --batch-mult 0.25)
    STOP=(--max-seconds 5) CONTINUE=(--steps 4 --eval-every 4 --eval-scenes 2 --batch-mult 0.25) WORKERS=2
else
    SCRATCH=(--text-steps 100 --steps 600 --eval-every 300 --eval-scenes 16 --checkpoint-every 200 --batch-mult 4)
    STOP=(--max-seconds 45) CONTINUE=(--steps 300 --eval-every 300 --eval-scenes 16 --batch-mult 4) WORKERS=15
fi

TRAIN=(python -c "from mllm_explain.cli import main; main()" train --device "$DEVICE")

python - "$DEVICE" <<'EOF'
import sys, torch
print("torch", torch.__version__, "| cuda available:", torch.cuda.is_available())
if sys.argv[1].startswith("cuda"):
    assert torch.cuda.is_available(), "no CUDA here: nothing to check"
    print("device:", torch.cuda.get_device_name(0), "| bf16:", torch.cuda.is_bf16_supported())
EOF

echo "== 1a. from scratch, stopped by --max-seconds"
timeout 150 "${TRAIN[@]}" --out "$DIR/scratch" --workers 8 "${SCRATCH[@]}" "${STOP[@]}" 2>&1 | tee "$DIR/scratch-1.log"
echo "== 1b. the same command without the time limit: resumes"
timeout 200 "${TRAIN[@]}" --out "$DIR/scratch" --workers 8 "${SCRATCH[@]}" 2>&1 | tee "$DIR/scratch-2.log"
echo "== 2. continuation at stage 2 from the bundled model"
timeout 150 "${TRAIN[@]}" --out "$DIR/continued" --init src/mllm_explain/checkpoints/synth-qwen2-vl --first-stage 2 \
    --lr 3e-4 --language-lr 0.1 --workers "$WORKERS" "${CONTINUE[@]}" 2>&1 | tee "$DIR/continued.log"

echo "== 3. results"
python - "$DIR" <<'EOF'
import json, re, sys
from pathlib import Path
from PIL import Image
from mllm_explain import load_model
from mllm_explain.data.synth import iter_scenes

out = Path(sys.argv[1])
ok = True
for name, logs in (("scratch", ["scratch-1.log", "scratch-2.log"]), ("continued", ["continued.log"])):
    text = "".join((out / log).read_text() for log in logs)
    rates = [float(r) for r in re.findall(r"step -?\d+ loss .* ([\d.]+) steps/s", text)]
    final = re.findall(r"trained (\d+) steps in (\d+)s \(([\d.]+) steps/s\)", text)
    print(f"{name}: steps/s at each 50-step log line: {rates}")
    print(f"{name}: per call: {final}")
    history = json.loads((out / name / "training_log.json").read_text())
    print(f"{name}: training_log.json steps {[h['step'] for h in history]}; last: "
          + json.dumps({k: history[-1][k] for k in history[-1] if k not in ('example', 'truth')}))
    checks = {"finished": bool(final), "checkpoints removed": not (out / name / "checkpoints").exists()}
    if name == "scratch":
        checks |= {"stopped by --max-seconds": "stopped after" in text, "resumed": "resuming from" in text,
                   "bf16 autocast": "bfloat16 autocast" in text}
    scene = next(iter(iter_scenes(1, 0, "val")))
    adapter = load_model(str(out / name), device="cpu")
    answer = adapter.tokenizer.decode(adapter.generate(Image.fromarray(scene.image), "Describe this image.",
                                                       max_new_tokens=40), skip_special_tokens=True).strip()
    print(f"{name}: caption on CPU: {answer!r} (truth: {scene.caption!r})")
    print(f"{name}: checks {checks}")
    ok &= all(checks.values())
print("GPU TRAIN CHECK", "PASSED" if ok else "FAILED")
sys.exit(0 if ok else 1)
EOF
