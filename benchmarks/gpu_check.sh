#!/usr/bin/env bash
# One-GPU check, at most 8 minutes: ES and GRPO for a few steps on a 0.5B model in
# bfloat16, through the CLI; prints steps/s, tokens/s and peak memory for each, and
# the throughput of one batched greedy generation.
#   bash benchmarks/gpu_check.sh            # on a machine with one CUDA GPU
#   bash benchmarks/gpu_check.sh --dry-run  # CPU, toy model of the same architecture: checks the logic
# Model: $CLBENCH_GPU_MODEL (a local folder), else Qwen/Qwen2.5-0.5B-Instruct from the HF
# cache, else a random model built from benchmarks/gpu_check/qwen2.5-0.5b-instruct.config.json.
# The sequence is the embedded math-only (short answers, generated data), so the check
# needs no data set and fits the time; the generate line measures long answers.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
HELP=benchmarks/gpu_check/gpu_check.py
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
START=$SECONDS
BUDGET=${GPU_CHECK_BUDGET_S:-470}   # the whole script stays under 8 minutes
left() { echo $(( BUDGET - (SECONDS - START) )); }

if [[ "${1:-}" == "--dry-run" ]]; then
  DRY=--dry-run; DEVICE=cpu; STEPS=1; POP=2; BATCH=2; GENS=2; PROMPTS=1; GB=2; GT=8; LIMIT=4
else
  # ES noise is drawn on the CPU (seeded, backend-independent): ~0.5B normals per member, so few members
  DRY=; DEVICE=cuda; STEPS=2; POP=4; BATCH=32; GENS=8; PROMPTS=4; GB=32; GT=256; LIMIT=32
  $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || { echo "gpu_check: torch sees no CUDA GPU; use --dry-run to check the script on a CPU" >&2; exit 2; }
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

MODEL=$($PY $HELP prepare "$WORK/model" $DRY) || { echo "gpu_check: could not prepare a model" >&2; exit 1; }
echo "model: $MODEL  device: $DEVICE  dtype: bfloat16"
timeout "$(left)" $PY $HELP generate "$MODEL" --device $DEVICE --batch $GB --tokens $GT \
  || echo '{"generate": "failed or timed out"}'

COMMON=(--sequence math-only --model "$MODEL" --dtype bfloat16 --device $DEVICE --steps $STEPS
        --eval-every $STEPS --eval-limit $LIMIT --curve-examples $LIMIT)
# ES gets about half of what is left, GRPO the rest; a run that overruns is cut and reported as such.
timeout "$(( $(left) / 2 ))" $PY -m clbench run --method es "${COMMON[@]}" --output "$WORK/es" \
  --backend inprocess --set population=$POP --set batch_size=$BATCH > "$WORK/es.log" 2>&1 \
  || { echo "es: exit $? (last lines of its log:)"; tail -5 "$WORK/es.log"; }
timeout "$(( $(left) - 10 ))" $PY -m clbench run --method grpo "${COMMON[@]}" --output "$WORK/grpo" \
  --set num_generations=$GENS --set prompts_per_step=$PROMPTS > "$WORK/grpo.log" 2>&1 \
  || { echo "grpo: exit $? (last lines of its log:)"; tail -5 "$WORK/grpo.log"; }
$PY $HELP summarize "$WORK/es" "$WORK/grpo"
echo "gpu_check: $(( SECONDS - START )) s in all"
