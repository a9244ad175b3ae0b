#!/usr/bin/env bash
# One-command setup for a fresh clone: a virtualenv in .venv with torch (CPU build
# on machines without an NVIDIA GPU, so no multi-GB CUDA wheels), then clbench.
#   bash bootstrap.sh            set up only
#   bash bootstrap.sh run        set up, then the main job (ES on math-then-code)
#   bash bootstrap.sh test       set up, then the test suite
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
TORCH=${CLBENCH_TORCH:-torch==2.13.0}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    .venv/bin/pip install -q "$TORCH"                       # CUDA build from the registry
  else                                                     # CPU build, never a CUDA one
    .venv/bin/pip install -q --timeout 30 --retries 1 "$TORCH" \
      --index-url "${CLBENCH_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}" \
      || .venv/bin/pip install -q "$TORCH"
  fi
fi
.venv/bin/pip install -q -c constraints.txt -e ".[dev,grpo]"   # the board's library versions
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
case "${1:-}" in
  run)  shift; exec .venv/bin/clbench run --method es --sequence math-then-code "$@" ;;
  test) shift; exec .venv/bin/python -m pytest "$@" ;;
  "")   echo "ready: .venv/bin/clbench --help" ;;
  *)    echo "usage: bash bootstrap.sh [run|test] [extra args]" >&2; exit 2 ;;
esac
