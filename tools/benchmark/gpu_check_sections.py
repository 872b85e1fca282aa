"""The sections of gpu_check.py: each a function of the shared context that
stores its results in ``ctx.report`` and returns a one-line note."""
import math
import os
import os.path as osp
import socket
import subprocess
import sys
import time
import warnings
from typing import Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import bench_loss  # noqa: E402  (sibling module: tools/benchmark/)
from mmtwoway.utils.runtime import adapt_to_machine, use_bf16
from throughput import (authors_throughput, plain_throughput,  # noqa
                        reset_peak, runner_throughput, runner_validation)
from tools.misc.photos import write_coco_photos  # noqa: E402
from tools.misc.synthetic import write_voc_jpegs  # noqa: E402

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
CONFIGS = osp.join(ROOT, 'configs')
# What tools/train.py runs with (the config's own entries are kept).
CHECK_HOOKS = ('TrainSettingsHook', 'NonFiniteLossHook')


class Context:
    """What the sections share: options, sizes, folders and the report."""

    def __init__(self, args, device: torch.device, sizes: Dict,
                 work: str, report: Dict) -> None:
        self.args, self.device, self.work, self.report = (args, device,
                                                          work, report)
        self.smoke = bool(args.smoke)
        self.__dict__.update(sizes)
        self.coco_root = osp.join(work, 'coco_synthetic')
        self.voc_root = osp.join(work, 'VOC2007')

    @property
    def throughput(self) -> Dict:
        return self.report.setdefault('throughput', {})


def with_check_hooks(cfg: Config) -> Config:
    """Add the hooks tools/train.py runs with, unless the config has them."""
    hooks = list(cfg.get('custom_hooks') or [])
    present = {h.get('type') for h in hooks if isinstance(h, dict)}
    hooks += [dict(type=name) for name in CHECK_HOOKS if name not in present]
    cfg.custom_hooks = hooks
    return cfg


def shrink(cfg: Config, batch: int, workers: int,
           crop: Optional[int]) -> None:
    """Benchmark sizes: batch, workers, buckets and (smoke) crop sizes."""
    cfg.model.backbone.init_cfg = None  # offline: random weights
    if cfg.model.head.loss.get('bucket_size') and \
            batch < cfg.model.head.loss.bucket_size:
        cfg.model.head.loss.bucket_size = batch
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.batch_size = batch
        loader.num_workers = workers
        if crop is None:
            continue
        for step in loader.dataset.pipeline:  # smoke: tiny images
            if step['type'] == 'DecodeRandomResizedCrop':
                step['scale'] = crop
            elif step['type'] == 'DecodeResizeCenterCrop':
                step.update(resize=crop + crop // 7, crop_size=crop)
    cfg.log_level = 'WARNING'


def coco_config(ctx: Context, work_dir: str, epochs: int,
                name: str = 'twoway_coco_r50.py', precision: str = 'fp16',
                validate: bool = True) -> Config:
    """``configs/<name>`` on the synthetic data, as tools/train.py runs it.

    Only what a benchmark must change is changed: the data root, no
    pretrained download, one validation after the last epoch (or none), no
    checkpoints, and (smoke only) smaller crops, batch and buckets; the
    check hooks of tools/train.py are added, ``precision='bf16'`` is
    ``--bf16``.
    """
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    cfg.work_dir = osp.join(ctx.work, work_dir)
    cfg.train_dataloader.dataset.data_root = ctx.coco_root
    cfg.val_dataloader.dataset.data_root = ctx.coco_root
    shrink(cfg, ctx.batch, ctx.workers, ctx.crop)
    cfg.train_cfg = dict(by_epoch=True, max_epochs=epochs,
                         val_interval=epochs if validate else epochs + 1)
    if not validate:
        cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)
    with_check_hooks(cfg)
    if precision == 'bf16':
        use_bf16(cfg)
    return adapt_to_machine(cfg)


def voc_config(ctx: Context) -> Config:
    """``configs/twoway_voc07_r50.py``'s validation on the synthetic data."""
    cfg = Config.fromfile(osp.join(CONFIGS, 'twoway_voc07_r50.py'))
    cfg.work_dir = osp.join(ctx.work, 'voc')
    cfg.val_dataloader.dataset.data_root = ctx.voc_root
    shrink(cfg, ctx.batch, ctx.workers, ctx.crop)
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'test_dataloader', 'test_evaluator',
                'test_cfg'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = None  # no best-checkpoint bookkeeping
    return adapt_to_machine(cfg)


# ----------------------------------------------------------- sections

def loss(ctx: Context) -> str:
    """Loss forward+backward: two-way vs BCE vs ASL (fp32, and bf16)."""
    dtypes = [('fp32', torch.float32)]
    if ctx.device.type == 'cuda':
        dtypes.append(('bf16', torch.bfloat16))
    ctx.report['loss_ms'] = {}
    for name, dtype in dtypes:
        ctx.report['loss_ms'][name] = bench_loss.loss_table(
            ctx.device, ctx.repeat, dtype, ctx.shapes, ctx.step_warmup)
    return ', '.join(name for name, _ in dtypes)


def resnet50_step(ctx: Context) -> str:
    """ResNet-50 bf16 training-step overhead of two-way vs BCE."""
    ctx.report['resnet50_step'] = bench_loss.resnet_step(
        ctx.device, ctx.step_repeat, ctx.step_batch, ctx.step_size,
        ctx.step_warmup)
    reset_peak(ctx.device)  # the ResNet step's memory is not the runs'
    return f'batch {ctx.step_batch}'


def data(ctx: Context) -> str:
    """COCO-sized photo JPEGs (train2014, val2014) and a VOC 2007 split."""
    sizes = [ctx.size] if ctx.size else None  # None: COCO's frequent sizes
    write_coco_photos(ctx.coco_root, ctx.num_images, 'train2014',
                      sizes=sizes)
    write_coco_photos(ctx.coco_root, max(ctx.batch, ctx.num_images // 8),
                      'val2014', seed=1, sizes=sizes)
    write_voc_jpegs(ctx.voc_root, max(2 * ctx.batch, 16),
                    *(ctx.size or (500, 375)))
    return f'{ctx.num_images} training JPEGs'


def runner(ctx: Context) -> str:
    """The config trained by mmengine's Runner (fp16), then validated."""
    cfg = coco_config(ctx, 'runner', ctx.epochs)
    ctx.throughput['runner'] = row = runner_throughput(cfg, ctx.device,
                                                       ctx.warmup)
    ctx.report['iterations'] = row['iterations']
    return f'{row["images_per_s"]:.1f} images/s'


def runner_bf16(ctx: Context) -> str:
    """The same Runner with --bf16 (autocast bf16, the disabled scaler)."""
    epochs = max(2, ctx.epochs // 2)
    cfg = coco_config(ctx, 'runner_bf16', epochs, precision='bf16',
                      validate=False)
    row = runner_throughput(cfg, ctx.device, ctx.warmup)
    row['optim_wrapper'] = cfg.optim_wrapper.type
    ctx.throughput['runner_bf16'] = row
    return f'{row["images_per_s"]:.1f} images/s ({cfg.optim_wrapper.type})'


def runner_gpu_decode(ctx: Context) -> str:
    """The Runner with the JPEGs decoded on the GPU."""
    cfg = coco_config(ctx, 'runner_gpu', ctx.epochs,
                      'twoway_coco_r50_gpu_decode.py')
    row = runner_throughput(cfg, ctx.device, ctx.warmup)
    ctx.throughput['runner_gpu_decode'] = row
    return f'{row["images_per_s"]:.1f} images/s'


class _SyncWindow:
    """Turns CUDA's sync debug mode on for each training iteration (from
    the first ``before_train_iter`` hook to the last ``after_train_iter``)
    and counts the sync warnings each iteration raised.

    The warnings are taken from ``warnings.showwarning`` with the filter
    'always' set anew each iteration, so that neither a filter nor a
    handler installed by the libraries merges repeated warnings.
    """

    def __init__(self, steps: int, cuda: bool) -> None:
        self.steps, self.cuda = steps, cuda
        self.per_step: List[int] = []
        self.log_steps: List[bool] = []
        self.where: List[str] = []
        self._count = None
        self._shown = None

    def _show(self, message, category, filename, lineno, file=None,
              line=None) -> None:
        if 'synchroniz' in str(message):
            self._count += 1
            self.where.append(f'{osp.relpath(filename, ROOT)}:{lineno}: '
                              f'{str(message).splitlines()[0][:120]}')
        else:
            self._shown(message, category, filename, lineno, file, line)

    def start(self, runner) -> None:
        if len(self.per_step) < self.steps:
            self._count, self._shown = 0, warnings.showwarning
            warnings.showwarning = self._show
            warnings.simplefilter('always')
            if self.cuda:
                torch.cuda.set_sync_debug_mode('warn')

    def stop(self, runner) -> None:
        if self._count is None:
            return
        if self.cuda:
            torch.cuda.set_sync_debug_mode('default')
        warnings.showwarning = self._shown
        self.per_step.append(self._count)
        interval = runner.cfg.default_hooks.logger.interval
        self.log_steps.append((runner.iter + 1) % interval == 0)
        self._count = None


class _Start(Hook):
    priority = 'HIGHEST'

    def __init__(self, window):
        self.window = window

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.window.start(runner)


class _Stop(Hook):
    priority = 'LOWEST'

    def __init__(self, window):
        self.window = window

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.window.stop(runner)


def sync_steps(ctx: Context, precision: str, steps: int) -> Dict:
    """``steps`` Runner iterations under ``set_sync_debug_mode('warn')``."""
    cuda = ctx.device.type == 'cuda'
    per_epoch = max(1, ctx.num_images // ctx.batch)
    cfg = coco_config(ctx, f'sync_{precision}',
                      math.ceil(steps / per_epoch), precision=precision,
                      validate=False)
    window = _SyncWindow(steps, cuda)
    with warnings.catch_warnings():  # restores the filters and handler
        run = Runner.from_cfg(cfg)
        run.register_hook(_Start(window))
        run.register_hook(_Stop(window))
        try:
            run.train()
        finally:
            if cuda:
                torch.cuda.set_sync_debug_mode('default')
    examples = sorted(set(window.where))
    between = [n for n, log in zip(window.per_step, window.log_steps)
               if not log]
    return dict(steps=len(window.per_step), checked=cuda,
                warnings=sum(window.per_step) if cuda else None,
                between_log_lines=sum(between) if cuda else None,
                per_step=window.per_step, examples=examples[:8],
                optim_wrapper=cfg.optim_wrapper.type)


def sync_debug(ctx: Context) -> str:
    """Host syncs per training step, counted by CUDA (goal 0 between log
    lines), in fp16 and bf16, with the check hooks."""
    steps = ctx.sync_steps
    ctx.report['sync_debug'] = result = {
        precision: sync_steps(ctx, precision, steps)
        for precision in ('fp16', 'bf16')
    }
    if ctx.device.type != 'cuda':
        return f'{steps} steps each ran; sync debug mode needs CUDA'
    return ', '.join(f'{p} {r["between_log_lines"]} warnings between log '
                     f'lines ({r["warnings"]} in all)'
                     for p, r in result.items())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_train(ctx: Context) -> str:
    """``tools/dist_train.sh CONFIG 1``: torchrun, one process, NCCL on a
    GPU (gloo without one), one epoch without validation."""
    cfg = coco_config(ctx, 'dist_train', 1, validate=False)
    path = osp.join(ctx.work, 'dist_train_config.py')
    cfg.dump(path)
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()),
               PYTHONPATH=os.pathsep.join(
                   [ROOT] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    start = time.perf_counter()
    res = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), path, '1',
         '--no-validate'], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=ctx.dist_timeout)
    output = res.stdout + res.stderr
    if res.returncode:
        raise RuntimeError(f'tools/dist_train.sh exited {res.returncode}:\n'
                           + output[-3000:])
    logged = [osp.join(dp, f) for dp, _, fs in os.walk(cfg.work_dir)
              for f in fs if f == 'scalars.json']
    if not logged:
        raise RuntimeError('tools/dist_train.sh finished without a log line '
                           f'in {cfg.work_dir}:\n{output[-3000:]}')
    backend = 'nccl' if ctx.device.type == 'cuda' else 'gloo'
    ctx.report['dist_train'] = dict(seconds=time.perf_counter() - start,
                                    backend=backend, returncode=0)
    return f'1 process, {backend}, exit 0'


def voc_val(ctx: Context) -> str:
    """VOC 2007 validation with difficult objects (CUDA labels)."""
    ctx.report['voc_val'] = runner_validation(voc_config(ctx))
    return f'mAP@class {ctx.report["voc_val"]["multi-label/mAP@class"]:.2f}'


def plain(ctx: Context) -> str:
    """A plain PyTorch loop: the same model, data, optimiser and AMP."""
    cfg = coco_config(ctx, 'plain', ctx.epochs)
    ctx.throughput.update(plain_throughput(cfg, ctx.device, ctx.epochs,
                                           ctx.warmup))
    return f'{ctx.throughput["plain_loop"]["images_per_s"]:.1f} images/s'


def authors_loop(ctx: Context) -> str:
    """A plain loop fed by the authors' torchvision pipeline."""
    cfg = coco_config(ctx, 'authors', ctx.epochs)
    ctx.throughput['authors_loop'] = row = authors_throughput(
        cfg, ctx.device, ctx.coco_root, ctx.epochs, ctx.warmup,
        ctx.crop or 224)
    return f'{row["images_per_s"]:.1f} images/s'


def nvjpeg(ctx: Context) -> str:
    """nvJPEG against the CPU decoder (tools/benchmark/gpu_nvjpeg.py)."""
    try:
        from gpu_nvjpeg import nvjpeg_section
    except ImportError as err:
        raise NotAvailable(f'tools/benchmark/gpu_nvjpeg.py: {err}')
    ctx.report.setdefault('markdown', {})['nvjpeg'] = nvjpeg_section(
        ctx.smoke, ctx.work)
    return 'see its table'


class NotAvailable(Exception):
    """A section that cannot run here (recorded as 'not available')."""
