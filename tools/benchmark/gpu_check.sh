#!/usr/bin/env bash
# GPU speed check of mmtwoway: loss fwd+bwd, ResNet-50 step overhead,
# Runner vs plain-loop training throughput and peak memory
# (tools/benchmark/gpu_check.py). About 3 minutes on one H100/H200, no
# network needed.
#
#   bash tools/benchmark/gpu_check.sh            # on the GPU machine
#   bash tools/benchmark/gpu_check.sh --smoke    # tiny sizes, any machine
#
# Environment:
#   OUT     results folder (gpu_check.json, gpu_check.md, log);
#           default work_dirs/gpu_check
#   WHEELS  folder of the OpenMMLab wheels (mmengine, mmcv-lite, mmpretrain,
#           pycocotools and their small dependencies), installed with
#           --no-index only when mmpretrain is not importable yet; default
#           the first of shared/device-wheels, ../shared/device-wheels and
#           work_dirs/device-wheels that holds them
#   PYTHON  interpreter; default python
# Extra arguments go to gpu_check.py (e.g. --smoke, --threads 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
OUT=${OUT:-work_dirs/gpu_check}

if ! "$PYTHON" -c 'import mmengine, mmpretrain, pycocotools' 2>/dev/null; then
    WHEELS=${WHEELS:-}
    for candidate in "$WHEELS" shared/device-wheels ../shared/device-wheels \
            work_dirs/device-wheels; do
        if [ -n "$candidate" ] && ls "$candidate"/mmpretrain-*.whl >/dev/null 2>&1; then
            WHEELS=$candidate
            break
        fi
    done
    if ! ls "$WHEELS"/mmpretrain-*.whl >/dev/null 2>&1; then
        echo "gpu_check.sh: mmpretrain is not installed and no wheel folder" \
             "was found; set WHEELS=<folder with the OpenMMLab wheels>." >&2
        exit 2
    fi
    # A fresh GPU image: transformers 5 breaks `import mmpretrain.models`
    # (the machine is thrown away afterwards, so removing it is harmless).
    "$PYTHON" -m pip uninstall -y -q transformers 2>/dev/null || true
    echo "gpu_check.sh: installing the wheels of $WHEELS (no network)"
    "$PYTHON" -m pip install -q --no-index --no-deps "$WHEELS"/*.whl
fi

# mmtwoway from this checkout, without installing it.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
if ! "$PYTHON" -c 'import mmtwoway' 2>"$OUT/import_error.txt"; then
    echo "gpu_check.sh: mmtwoway (mmpretrain, mmengine) cannot be imported" \
         "here; the last lines of the error ($OUT/import_error.txt):" >&2
    tail -n 3 "$OUT/import_error.txt" >&2
    exit 2
fi
timeout 290 "$PYTHON" tools/benchmark/gpu_check.py \
    --json "$OUT/gpu_check.json" --md "$OUT/gpu_check.md" "$@" \
    2>&1 | tee "$OUT/gpu_check.log"
