"""What ``import mmtwoway`` (``custom_imports``) loads, and what it must not."""
import json
import subprocess
import sys

import pytest

# A subprocess: `make test-fast` skips it.
pytestmark = pytest.mark.slow


def test_runtime_import_leaves_out_tools_of_tests_and_deployment():
    code = ('import json, sys, mmtwoway; print(json.dumps(sorted('
            'm for m in sys.modules)))')
    res = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=300, check=True)
    modules = set(json.loads(res.stdout.splitlines()[-1]))
    # what a training run uses is registered ...
    for name in ('mmtwoway.structures', 'mmtwoway.models.heads',
                 'mmtwoway.evaluation.metrics', 'mmtwoway.datasets',
                 'mmtwoway.engine.hooks'):
        assert name in modules, name
    # ... and nothing else is imported
    for top in ('sklearn', 'matplotlib', 'onnx', 'onnxruntime',
                'mmtwoway.deployment', 'tools'):
        assert not any(m == top or m.startswith(top + '.')
                       for m in modules), top
