"""``DeferredRuntimeInfoHook``: a whole Runner iteration of the paper's COCO
config without a host sync outside the logging interval, and the same log
as mmengine's ``RuntimeInfoHook``."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmtwoway  # noqa: F401  (registers everything)
from tools.misc.synthetic import write_coco_jpegs
from mmtwoway.engine.hooks import DeferredRuntimeInfoHook
from mmtwoway.utils.runtime import adapt_to_machine

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ITERS, INTERVAL = 6, 3


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    """A synthetic MS-COCO 2014 train split of 12 small JPEGs."""
    root = tmp_path_factory.mktemp('coco')
    write_coco_jpegs(str(root), 2 * ITERS, 48, 40, split='train2014')
    return root


class IterationSyncs(Hook):
    """Counts the host reads of each training iteration, hooks included.

    Its ``before_train_iter`` runs first and its ``after_train_iter``
    last, so each count covers the data preprocessor, forward, loss,
    backward, optimiser step and every hook of the iteration (not the
    data loading in between, which runs in workers on a GPU machine).
    """

    priority = 'HIGHEST'

    def __init__(self, recorder_cls, syncing):
        self.recorder_cls, self.syncing = recorder_cls, syncing
        self.counts = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.recorder = self.recorder_cls()
        self.recorder.__enter__()

    def end(self):
        self.recorder.__exit__(None, None, None)
        self.counts.append(
            sum(op in self.syncing for op in self.recorder.ops))


class EndIteration(Hook):
    priority = 'LOWEST'

    def __init__(self, counter):
        self.counter = counter

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.counter.end()


def train(coco_root, work_dir, runtime_info, recorder_cls, syncing,
          checks=False):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'twoway_coco_r50.py'))
    cfg.work_dir = str(work_dir)
    cfg.model.backbone.init_cfg = None  # no download
    cfg.model.head.loss.bucket_size = None  # the paper's 128 > batch 2
    cfg.train_dataloader.dataset.data_root = str(coco_root)
    cfg.train_dataloader.update(batch_size=2, num_workers=0)
    (crop, ) = [t for t in cfg.train_dataloader.dataset.pipeline
                if t['type'] == 'DecodeRandomResizedCrop']
    crop.scale = 32
    cfg.train_cfg.max_epochs = 1
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = INTERVAL
    cfg.default_hooks.runtime_info = dict(type=runtime_info)
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.log_level = 'WARNING'
    if checks:
        # The config's check hooks, with the non-finite checks in the mode
        # they take on a GPU (on the device, read at the log interval).
        for hook in cfg.custom_hooks:
            if hook['type'] == 'NonFiniteLossHook':
                hook['sync_free'] = True
    else:
        cfg.custom_hooks = []
    adapt_to_machine(cfg)
    runner = Runner.from_cfg(cfg)
    counter = IterationSyncs(recorder_cls, syncing)
    runner.register_hook(counter)
    runner.register_hook(EndIteration(counter))
    runner.train()
    (log, ) = [p for p in work_dir.glob('*/vis_data/*.json')
               if p.stem == p.parent.parent.name]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    return counter.counts, [(r['step'], r['loss']) for r in lines]


@pytest.mark.slow
def test_iterations_between_log_lines_never_sync(coco_root, tmp_path,
                                                 op_recorder, syncing_ops,
                                                 one_thread):
    stock_counts, stock_log = train(coco_root, tmp_path / 'stock',
                                    'RuntimeInfoHook', op_recorder,
                                    syncing_ops)
    counts, log = train(coco_root, tmp_path / 'deferred',
                        'DeferredRuntimeInfoHook', op_recorder, syncing_ops)
    assert len(counts) == ITERS
    # mmengine's hook reads every loss of every iteration: the recorder
    # sees it, so the check below can fail.
    assert all(c > 0 for c in stock_counts), stock_counts
    # No value is read in any iteration: the losses wait on the device and
    # are read at the log interval in one stacked copy (``tolist``, which
    # on a GPU is the one sync of that iteration).
    assert counts == [0] * ITERS
    # The same log lines: same steps, same (smoothed) loss values.
    assert len(log) == ITERS // INTERVAL
    assert log == stock_log
    # With the config's check hooks in their GPU mode, the iterations
    # between log lines still read nothing.
    counts, checked_log = train(coco_root, tmp_path / 'checked',
                                'DeferredRuntimeInfoHook', op_recorder,
                                syncing_ops, checks=True)
    for i, count in enumerate(counts):
        if (i + 1) % INTERVAL:
            assert count == 0, (i, counts)
    assert checked_log == stock_log


def test_flush_keeps_order_values_and_dtypes():
    class Hub:
        def __init__(self):
            self.seen = []

        def update_scalar(self, key, value):
            self.seen.append((key, value))

    class FakeRunner:
        message_hub = Hub()

    hook = DeferredRuntimeInfoHook(interval=5)
    values = [torch.tensor(1 / 3), torch.tensor(7), 0.25,
              torch.tensor(2 / 3, dtype=torch.float64)]
    for i, v in enumerate(values):
        hook._pending.append((f'train/k{i}', v))
    hook.flush(FakeRunner)
    assert FakeRunner.message_hub.seen == [
        ('train/k0', torch.tensor(1 / 3).item()), ('train/k1', 7),
        ('train/k2', 0.25), ('train/k3', 2 / 3)]
    assert isinstance(FakeRunner.message_hub.seen[1][1], int)
    assert not hook._pending


@pytest.mark.parametrize('interval', [0, -1, 1.5, True])
def test_bad_interval_is_an_error(interval):
    with pytest.raises(ValueError, match='interval'):
        DeferredRuntimeInfoHook(interval=interval)
