"""A small real training setup on the demo data, for the hook tests.

Real digit mosaics in the COCO layout (``write_mosaic_dataset``), the demo
config and mmengine's Runner in-process, so that a test can look at the
runner after a run stopped.
"""
import os.path as osp
from typing import Optional

import numpy as np
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain.registry import DATASETS

from mmtwoway.datasets import CocoMultiLabel
from tools.misc.item_pools import digits_item_pool
from tools.misc.mosaic import write_mosaic_dataset

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CFG = osp.join(ROOT, 'configs', 'twoway_demo.py')


def make_data(root: str, num_train: int = 40, num_val: int = 16) -> str:
    """Write the demo mosaics under ``root``; return it."""
    write_mosaic_dataset(root, digits_item_pool(), num_train, num_val,
                         seed=5)
    return root


@DATASETS.register_module(force=True)
class CocoWithNaNTarget(CocoMultiLabel):
    """Demo data whose annotations carry a NaN for one image: the kind of
    record a user's own dataset code can produce (e.g. a float label
    column with an empty cell)."""

    def load_data_list(self):
        data_list = super().load_data_list()
        num_classes = len(self.metainfo['classes'])
        for info in data_list:
            score = np.zeros(num_classes, dtype=np.float32)
            score[info['gt_label']] = 1
            info['gt_score'] = score
        data_list[self.nan_at]['gt_score'][3] = np.nan
        return data_list

    nan_at = 5


def demo_cfg(root: str, work_dir: str, batch_size: int = 16,
             max_epochs: int = 1, custom_hooks: Optional[list] = None,
             **train_loader) -> Config:
    """The demo config on ``root``: no validation, log every iteration."""
    cfg = Config.fromfile(DEMO_CFG)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = root
    cfg.train_dataloader.batch_size = batch_size
    cfg.train_dataloader.update(train_loader)
    cfg.train_cfg.max_epochs = max_epochs
    cfg.train_cfg.val_interval = max_epochs + 1
    cfg.param_scheduler.T_max = max_epochs
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.work_dir = work_dir
    cfg.custom_hooks = custom_hooks or []
    cfg.randomness = dict(seed=0)
    return cfg


def build_runner(cfg: Config) -> Runner:
    """mmengine's Runner of ``cfg``."""
    return Runner.from_cfg(cfg)
