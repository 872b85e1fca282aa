"""mmtwoway: the Two-way Multi-Label Loss (Kobayashi, CVPR 2023) for MMPretrain.

Importing it only registers mmtwoway's own modules (docs/stack_fixes.md).
"""
try:
    import mmpretrain.models  # noqa: F401
except TypeError as err:  # the transformers >= 5 failure of mmpretrain 1.2
    raise ImportError(
        'mmpretrain 1.2 cannot import its models with transformers >= 5 '
        'installed. Run `pip install "transformers<5"`, or import '
        'mmtwoway_stack_fixes before mmpretrain and mmtwoway (in a config: '
        "custom_imports = dict(imports=['mmtwoway_stack_fixes', "
        f"'mmtwoway'])). Original error: {err}") from err

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .version import __version__  # noqa: E402,F401
