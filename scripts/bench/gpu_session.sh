#!/usr/bin/env bash
# r1lab's GPU checks and benchmarks on a machine that has torch (and transformers) but no cargo: one stage per call,
# each well under ten minutes. Results go to $OUT (default /tmp/r1lab-gpu).
#
# Here (the build machine):
#   make build && mkdir -p .gpu && strip -o .gpu/r1lab target/debug/r1lab && xz -T2 -3 -f .gpu/r1lab
#   (.gpu/ is git-ignored; the compressed binary is about 17 MB)
# There, from the repository root, with .gpu/ copied along:
#   bash scripts/bench/gpu_session.sh check     # CUDA info, smoke, f32/bf16 logits vs the CPU, greedy tokens
#   bash scripts/bench/gpu_session.sh rollout   # 7B decode, batch 64, 512 new tokens, against transformers generate
#   bash scripts/bench/gpu_session.sh update    # 7B GRPO step at the PTST stage-2 shape (RESPONSE_LEN, default 8192)
set -euo pipefail
stage=${1:?usage: gpu_session.sh check|rollout|update}
out=${OUT:-/tmp/r1lab-gpu}
mkdir -p "$out"
bin=.gpu/r1lab
if [ ! -x "$bin" ]; then
    xz -d -c .gpu/r1lab.xz >"$bin"
    chmod +x "$bin"
fi
LD_LIBRARY_PATH=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__) + "/lib")')
export LD_LIBRARY_PATH R1LAB_BENCH_PYTHON=python3
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.csv" 2>&1 || true

case "$stage" in
check)
    "$bin" --device cuda info --json >"$out/info.json"
    "$bin" --device cuda smoke --out "$out/smoke"
    model=assets/tiny-base
    img=tests/fixtures/processor/photo_61x47.jpg
    prompt="How many shapes are there?"
    for run in cpu:f32 cuda:f32 cuda:bf16; do
        dev=${run%:*} dt=${run#*:}
        "$bin" --device "$dev" forward --model "$model" --prompt "$prompt" --image "$img" --dtype "$dt" \
            --out "$out/logits_${dev}_${dt}.safetensors"
        "$bin" --device "$dev" generate --model "$model" --prompt "$prompt" --image "$img" --dtype "$dt" \
            --max-new-tokens 64 >"$out/greedy_${dev}_${dt}.txt" 2>"$out/greedy_${dev}_${dt}.log"
    done
    python3 - "$out" <<'EOF'
import json, sys
from pathlib import Path
from safetensors.torch import load_file
out = Path(sys.argv[1])
ref = load_file(out / "logits_cpu_f32.safetensors")["logits"].double()
rows = {}
for run in ["cuda_f32", "cuda_bf16"]:
    got = load_file(out / f"logits_{run}.safetensors")["logits"].double()
    rel = ((got - ref).norm() / ref.norm()).item()
    same_argmax = (got.argmax(-1) == ref.argmax(-1)).double().mean().item()
    greedy_same = (out / f"greedy_{run}.txt").read_text() == (out / "greedy_cpu_f32.txt").read_text()
    rows[run] = {"rel_l2_vs_cpu_f32": rel, "max_abs": (got - ref).abs().max().item(),
                 "argmax_agreement": same_argmax, "greedy_text_identical": greedy_same}
(out / "check.json").write_text(json.dumps(rows, indent=1))
for k, v in rows.items():
    print(k, json.dumps(v))
EOF
    ;;
rollout)
    "$bin" --device cuda bench rollout --model 7b --dtype bf16 --batch "${BATCH:-64}" --prompt-len "${PROMPT_LEN:-256}" \
        --new-tokens "${NEW_TOKENS:-512}" --iters "${ITERS:-3}" --baseline --out "$out/rollout"
    ;;
update)
    "$bin" --device cuda bench update --model 7b --dtype bf16 --batch "${BATCH:-8}" --prompt-len "${PROMPT_LEN:-256}" \
        --response-len "${RESPONSE_LEN:-8192}" --micro-batch "${MICRO_BATCH:-1}" --states "${STATES:-param_dtype}" \
        --recompute --iters "${ITERS:-2}" --baseline --out "$out/update"
    ;;
*)
    echo "unknown stage $stage: use check, rollout or update" >&2
    exit 2
    ;;
esac
