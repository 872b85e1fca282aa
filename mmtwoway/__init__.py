"""mmtwoway: the Two-way Multi-Label Loss (Kobayashi, CVPR 2023) for MMPretrain.

``import mmtwoway`` (or ``custom_imports = dict(imports=['mmtwoway'])`` in a
config) registers the loss, head, metrics, datasets and transforms in
mmpretrain's registries. The stack fixes run first: one of them must act
before anything imports ``mmpretrain.models``.
"""
from .utils.compat import apply_stack_fixes

apply_stack_fixes()

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .version import __version__  # noqa: E402,F401
