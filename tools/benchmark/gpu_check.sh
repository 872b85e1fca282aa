#!/usr/bin/env bash
# GPU check of mmtwoway (tools/benchmark/gpu_check.py; docs/gpu.md): loss
# fwd+bwd, ResNet-50 step overhead, training throughput end to end (Runner
# in fp16 and --bf16, with CPU and with GPU JPEG decoding, 16 workers, the
# check hooks of tools/train.py) against the model-only step rate and plain
# loops, host syncs per step (CUDA's sync debug mode), tools/dist_train.sh
# over NCCL, COCO and VOC validation. Each section runs isolated: a failure
# is written with its traceback and the next section runs; the results are
# written as each section ends. Within 8 minutes on one H100 (no section
# starts after 450 s; the Python part is stopped at 470 s), no network.
#
#   bash tools/benchmark/gpu_check.sh            # on the GPU machine
#   bash tools/benchmark/gpu_check.sh --smoke    # tiny sizes, any machine
#
# Environment:
#   OUT     results folder (gpu_check.json, gpu_check.md, log, imports.txt);
#           default work_dirs/gpu_check
#   WHEELS  folder of the OpenMMLab wheels (mmengine, mmcv-lite, mmpretrain,
#           pycocotools and their small dependencies), installed with
#           --no-index only when an import fails; default the first of
#           .whl, shared/device-wheels, ../shared/device-wheels and
#           work_dirs/device-wheels that holds them
#   PYTHON  interpreter; default python, or python3 where there is no python
# Extra arguments go to gpu_check.py (e.g. --smoke, --threads 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${PYTHON:-}" ]; then
    PYTHON=$(command -v python || command -v python3 || echo python3)
fi
OUT=${OUT:-work_dirs/gpu_check}

# What the check imports, each with the pip package that provides it.
check_imports() {
    "$PYTHON" - <<'PY'
import importlib, sys
need = [('torch', 'torch'), ('torchvision', 'torchvision'),
        ('cv2', 'opencv-python'), ('PIL', 'Pillow'),
        ('markdown', 'Markdown'), ('einops', 'einops'),
        ('sklearn', 'scikit-learn'),
        ('pycocotools', 'pycocotools'), ('mmengine', 'mmengine'),
        ('mmcv', 'mmcv-lite'), ('mmpretrain', 'mmpretrain'),
        ('mmpretrain.models', 'mmpretrain (its models)'),
        ('mmtwoway', 'this checkout (PYTHONPATH)')]
missing = []
for module, package in need:
    try:
        importlib.import_module(module)
    except Exception as err:  # ImportError and what a broken stack raises
        missing.append(f'  {module} (pip package {package}): '
                       f'{type(err).__name__}: {err}'.splitlines()[0])
if missing:
    print('\n'.join(missing))
    sys.exit(1)
PY
}

# mmtwoway from this checkout, without installing it.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
if ! check_imports >"$OUT/imports.txt" 2>&1; then
    # An explicit WHEELS is the only folder tried.
    if [ -n "${WHEELS:-}" ]; then
        candidates=("$WHEELS")
    else
        candidates=(.whl shared/device-wheels ../shared/device-wheels
                    work_dirs/device-wheels)
    fi
    WHEELS=
    for candidate in "${candidates[@]}"; do
        if [ -n "$candidate" ] && ls "$candidate"/mmpretrain-*.whl >/dev/null 2>&1; then
            WHEELS=$candidate
            break
        fi
    done
    if [ -n "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        # A fresh GPU image: transformers 5 breaks `import mmpretrain.models`
        # (the machine is thrown away afterwards, so removing it is harmless).
        "$PYTHON" -m pip uninstall -y -q transformers 2>/dev/null || true
        echo "gpu_check.sh: installing the wheels of $WHEELS (no network)"
        "$PYTHON" -m pip install -q --no-index --no-deps "$WHEELS"/*.whl
    fi
    if ! check_imports >"$OUT/imports.txt" 2>&1; then
        echo "gpu_check.sh: these imports fail (install the packages, or set" \
             "WHEELS=<folder of wheels>; ${WHEELS:-no wheel folder found}):" >&2
        cat "$OUT/imports.txt" >&2
        exit 2
    fi
fi
timeout 470 "$PYTHON" tools/benchmark/gpu_check.py \
    --json "$OUT/gpu_check.json" --md "$OUT/gpu_check.md" "$@" \
    2>&1 | tee "$OUT/gpu_check.log"
