"""The paper's experimental protocol as data: runs, configs, results.

Not imported by ``import mmtwoway`` (nothing here registers modules); used by
``tools/misc/gen_configs.py``, ``tools/ablation.py`` and the tests.
"""
from .configs import all_runs, generated_configs, render_ablation, render_cell
from .paper import (BACKBONES, DATASETS, HAND_WRITTEN, LOSSES, TABLES,
                    WEIGHTS, Run, Table, Weights)

__all__ = [
    'BACKBONES', 'DATASETS', 'HAND_WRITTEN', 'LOSSES', 'TABLES', 'WEIGHTS',
    'Run', 'Table', 'Weights', 'all_runs', 'generated_configs',
    'render_ablation', 'render_cell'
]
