"""A tiny real training run on the demo data, shared by the tool tests.

The first test module that asks for it builds 64 + 32 digit-mosaic images
with ``tools/misc/make_demo_data.py`` and trains the demo config for one
epoch with ``tools/train.py`` (a subprocess, as a user would); later
modules of the same pytest session reuse the checkpoint. The tools
themselves are loaded from their files and run in-process (``main(argv)``),
which saves the few seconds of imports each subprocess would cost.
"""
import contextlib
import importlib
import io
import os
import os.path as osp
import subprocess
import sys
from typing import NamedTuple

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools')
DEMO_CFG = osp.join(ROOT, 'configs', 'twoway_demo.py')
CLASSES = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven',
           'eight', 'nine')


class DemoRun(NamedTuple):
    """What the shared run produced."""

    root: str  # demo data: annotations/, train/, val/
    config: str  # the demo config with data_root pointing at ``root``
    checkpoint: str  # epoch_1.pth of the one-epoch run
    work_dir: str

    @property
    def val_json(self) -> str:
        return osp.join(self.root, 'annotations', 'instances_val.json')

    def val_images(self):
        """The val images in the dataset's order (by image id)."""
        folder = osp.join(self.root, 'val')
        return [osp.join(folder, f) for f in sorted(os.listdir(folder))]


_RUN = {}


def run_checked(cmd, timeout=600):
    """Run a command from the repository root; fail with its output."""
    res = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return res.stdout + res.stderr


def demo_run(tmp_path_factory) -> DemoRun:
    """The session's one-epoch demo run (made on first use)."""
    if 'run' not in _RUN:
        base = tmp_path_factory.mktemp('demo_run')
        root, work_dir = str(base / 'data'), str(base / 'work')
        run_checked([
            sys.executable,
            osp.join(TOOLS, 'misc', 'make_demo_data.py'), root,
            '--num-train', '64', '--num-val', '32', '--seed', '3'
        ])
        cfg = Config.fromfile(DEMO_CFG)
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            cfg[loader].dataset.data_root = root
        cfg.train_dataloader.batch_size = 32
        cfg.train_cfg.max_epochs = 1
        cfg.train_cfg.val_interval = 2  # no validation: not needed here
        cfg.param_scheduler.T_max = 1
        cfg.default_hooks.checkpoint.interval = 1
        config = str(base / 'demo.py')
        cfg.dump(config)
        run_checked([
            sys.executable,
            osp.join(TOOLS, 'train.py'), config, '--work-dir', work_dir
        ])
        _RUN['run'] = DemoRun(root, config, osp.join(work_dir,
                                                     'epoch_1.pth'),
                              work_dir)
    return _RUN['run']


def load_tool(relpath: str):
    """Import a tool script (e.g. 'predict' or 'analysis/plot_ap')."""
    return importlib.import_module('tools.' + relpath.replace('/', '.'))


def run_main(relpath: str, argv) -> str:
    """Run a tool's ``main(argv)`` in-process; return what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        load_tool(relpath).main([str(a) for a in argv])
    return out.getvalue()


def calibration(run: DemoRun) -> tuple:
    """The run's calibration file by ``tools/calibrate.py`` (made once),
    and what the tool printed."""
    if 'calibration' not in _RUN:
        path = osp.join(run.work_dir, 'calibration.json')
        printed = run_main('calibrate',
                           [run.config, run.checkpoint, '--out', path])
        _RUN['calibration'] = (path, printed)
    return _RUN['calibration']


def onnx_model(run: DemoRun, calibrated: bool = True) -> tuple:
    """The run's checkpoint exported by tools/deployment/export_onnx.py
    (made once), with the calibration file's rule in the graph or logits
    only, and what the tool printed."""
    key = 'onnx' if calibrated else 'onnx_logits'
    if key not in _RUN:
        path = osp.join(run.work_dir, f'{key}.onnx')
        argv = [run.config, run.checkpoint, '--out', path]
        if calibrated:
            argv += ['--calibration', calibration(run)[0]]
        _RUN[key] = (path, run_main('deployment/export_onnx', argv))
    return _RUN[key]
