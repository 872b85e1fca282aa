"""Speed of the two-way loss on a GPU, end to end (run by gpu_check.sh).

    python tools/benchmark/gpu_check.py [--json OUT.json] [--md OUT.md]
    python tools/benchmark/gpu_check.py --smoke    # tiny sizes, any device

Four measurements, all on one device:

1. loss forward+backward, two-way vs BCE vs ASL, at (M, C) = (128, 80),
   (128, 620), (512, 80) (``bench_loss.loss_table``, fp32 and bf16);
2. the ResNet-50 bf16 training-step overhead of two-way vs BCE at batch 128,
   with peak memory (``bench_loss.resnet_step``);
3. training throughput (images/s, data loading included) of
   ``configs/twoway_coco_r50.py`` through the real mmengine Runner, on
   synthetic JPEGs written in the COCO 2014 layout, side by side with a
   plain PyTorch loop running the same model, batch, loss, optimiser and AMP
   on the same dataset and pipeline;
4. where the difference goes: the dataloader alone (no model) and the
   training step alone (one batch kept on the device), and the peak device
   memory of each run.

``--smoke`` shrinks everything (tiny JPEGs, 32-px crops, batch 4) so that
the CPU path can be tested anywhere; its figures mean nothing.
"""
import argparse
import copy
import gc
import importlib.util
import json
import os
import os.path as osp
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

import mmtwoway  # noqa: F401  (registers mmtwoway; applies stack fixes)
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmpretrain.registry import DATASETS, MODELS
from mmtwoway.datasets.mosaic import CocoWriter
from mmtwoway.utils.runtime import adapt_to_machine
from PIL import Image

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
CONFIG = osp.join(ROOT, 'configs', 'twoway_coco_r50.py')
# COCO 2014's category ids: 1..90 without these ten.
UNUSED_COCO_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
COCO_IDS = tuple(i for i in range(1, 91) if i not in UNUSED_COCO_IDS)


def load_bench_loss():
    """The sibling ``bench_loss.py`` (tools are not a package)."""
    if 'bench_loss' not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            'bench_loss', osp.join(HERE, 'bench_loss.py'))
        module = importlib.util.module_from_spec(spec)
        sys.modules['bench_loss'] = module
        spec.loader.exec_module(module)
    return sys.modules['bench_loss']


def write_coco_jpegs(root: str, num_images: int, width: int, height: int,
                     seed: int = 0) -> None:
    """Synthetic COCO 2014 train split: JPEGs and an instances json.

    Pixels are smooth random fields (upsampled noise), so JPEG files have
    natural-image sizes and decoding costs what it costs on real photos;
    each image gets 1..4 random COCO categories.

    Args:
        root (str): Dataset root (``annotations/instances_train2014.json``
            and ``train2014/COCO_train2014_<id>.jpg`` are written there).
        num_images (int): Number of images.
        width (int): Image width.
        height (int): Image height.
        seed (int): Random seed.
    """
    rng = np.random.default_rng(seed)
    writer = CocoWriter([dict(id=i, name=f'category {i}') for i in COCO_IDS])
    os.makedirs(osp.join(root, 'train2014'), exist_ok=True)
    for _ in range(num_images):
        coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3),
                              dtype=np.uint8)
        img = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
        name = f'COCO_train2014_{writer.next_image_id:012d}.jpg'
        img.save(osp.join(root, 'train2014', name), quality=90)
        image_id = writer.add_image(name, width, height)
        for cid in rng.choice(COCO_IDS, rng.integers(1, 5), replace=False):
            writer.add_annotation(image_id, int(cid),
                                  [0, 0, width // 2, height // 2])
    writer.dump(osp.join(root, 'annotations', 'instances_train2014.json'))


def load_config(data_root: str, work_dir: str, batch: int, workers: int,
                crop: Optional[int], epochs: int) -> Config:
    """``configs/twoway_coco_r50.py`` pointed at the synthetic data.

    Only what a benchmark must change is changed: the data root, no
    pretrained download, no validation or checkpoints, and (smoke only)
    smaller crops, batch and buckets.
    """
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = work_dir
    cfg.model.backbone.init_cfg = None  # offline: random weights
    loader = cfg.train_dataloader
    loader.dataset.data_root = data_root
    loader.batch_size = batch
    loader.num_workers = workers
    if crop is not None:  # smoke: tiny crops
        for step in loader.dataset.pipeline:
            if step['type'].endswith('RandomResizedCrop'):
                step['scale'] = crop
    if batch < cfg.model.head.loss.bucket_size:
        cfg.model.head.loss.bucket_size = batch
    cfg.train_cfg = dict(by_epoch=True, max_epochs=epochs)
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg',
                'test_dataloader', 'test_evaluator', 'test_cfg'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10**6)
    cfg.log_level = 'WARNING'
    return adapt_to_machine(cfg)


class IterClock(Hook):
    """Wall-clock time at the end of every training iteration."""

    priority = 'VERY_LOW'

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stamps: List[float] = []

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        self.stamps.append(time.perf_counter())


def images_per_second(stamps: Sequence[float], batch: int,
                      warmup: int) -> float:
    """Throughput over the iterations after ``warmup``."""
    if len(stamps) <= warmup + 1:
        raise ValueError(f'only {len(stamps)} iterations timed; need more '
                         f'than warmup + 1 = {warmup + 1}')
    return batch * (len(stamps) - 1 - warmup) / (stamps[-1] - stamps[warmup])


def peak_mib(device: torch.device) -> Optional[float]:
    """Peak allocated device memory since the last reset, MiB (CUDA)."""
    if device.type != 'cuda':
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def reset_peak(device: torch.device) -> None:
    """Start a new peak-memory window; earlier runs' objects are freed."""
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def runner_throughput(cfg: Config, device: torch.device,
                      warmup: int) -> Dict[str, float]:
    """images/s of ``Runner.train()`` on the config, and its peak memory."""
    clock = IterClock(device)
    cfg = copy.deepcopy(cfg)
    reset_peak(device)
    runner = Runner.from_cfg(cfg)
    runner.register_hook(clock, 'VERY_LOW')
    runner.train()
    result = dict(images_per_s=images_per_second(
        clock.stamps, cfg.train_dataloader.batch_size, warmup),
                  iterations=len(clock.stamps),
                  peak_mib=peak_mib(device))
    del runner
    return result


def plain_parts(cfg: Config, device: torch.device):
    """The config's model, dataset and optimiser, built without mmengine's
    Runner: what a hand-written PyTorch training script would hold."""
    model = MODELS.build(copy.deepcopy(cfg.model)).to(device)
    model.init_weights()
    loader_cfg = cfg.train_dataloader
    dataset = DATASETS.build(copy.deepcopy(loader_cfg.dataset))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=loader_cfg.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=loader_cfg.num_workers,
        persistent_workers=loader_cfg.num_workers > 0,
        pin_memory=device.type == 'cuda',
        collate_fn=pseudo_collate)
    opt_cfg = cfg.optim_wrapper.optimizer
    head_mult = cfg.optim_wrapper.paramwise_cfg.custom_keys.head.lr_mult
    head = [p for n, p in model.named_parameters() if n.startswith('head')]
    rest = [p for n, p in model.named_parameters()
            if not n.startswith('head')]
    optimizer = torch.optim.SGD(
        [dict(params=rest), dict(params=head, lr=opt_cfg.lr * head_mult)],
        lr=opt_cfg.lr,
        momentum=opt_cfg.momentum,
        weight_decay=opt_cfg.weight_decay,
        nesterov=opt_cfg.nesterov)
    return model, loader, optimizer


def plain_step(model, optimizer, scaler, data: dict, device: torch.device,
               amp: bool) -> None:
    """One training step: preprocess, forward under AMP, scaled backward."""
    data = model.data_preprocessor(data, True)
    with torch.autocast(device.type, enabled=amp):
        loss = model(**data, mode='loss')['loss']
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)


def plain_throughput(cfg: Config, device: torch.device, epochs: int,
                     warmup: int) -> Dict[str, Dict[str, float]]:
    """The plain loop, the dataloader alone and the step alone."""
    amp = device.type == 'cuda'  # the config's AmpOptimWrapper: fp16 + scaler
    batch = cfg.train_dataloader.batch_size
    torch.manual_seed(0)
    reset_peak(device)
    model, loader, optimizer = plain_parts(cfg, device)
    model.train()
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    total = epochs * len(loader)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total)

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    stamps = []
    for _ in range(epochs):
        for data in loader:
            plain_step(model, optimizer, scaler, data, device, amp)
            scheduler.step()
            sync()
            stamps.append(time.perf_counter())
    results = dict(plain_loop=dict(
        images_per_s=images_per_second(stamps, batch, warmup),
        iterations=len(stamps),
        peak_mib=peak_mib(device)))

    stamps = []  # the dataloader alone: its workers' decode + augment rate
    for _ in range(epochs):
        for data in loader:
            stamps.append(time.perf_counter())
    results['dataloader_only'] = dict(
        images_per_s=images_per_second(stamps, batch, warmup),
        iterations=len(stamps))

    data = next(iter(loader))  # the step alone: one batch, reused
    stamps = []
    for _ in range(total):
        plain_step(model, optimizer, scaler, data, device, amp)
        sync()
        stamps.append(time.perf_counter())
    results['step_only'] = dict(
        images_per_s=images_per_second(stamps, batch, warmup),
        iterations=len(stamps),
        peak_mib=peak_mib(device))
    return results


def to_markdown(report: dict) -> str:
    """The report as markdown tables for docs/benchmark.md."""
    sizes = ('SMOKE RUN (tiny sizes, figures meaningless)'
             if report['smoke'] else 'full sizes')
    lines = [
        f'Device: {report["device"]}; torch {report["torch"]}; {sizes}.',
        '', '| loss, fwd+bwd ms | dtype | ' +
        ' | '.join(report['shapes']) + ' |',
        '|---|---|' + '---|' * len(report['shapes'])
    ]
    for dtype, table in report['loss_ms'].items():
        for name, row in table.items():
            lines.append(f'| {name} | {dtype} | ' +
                         ' | '.join(f'{row[s]:.3f}' for s in
                                    report['shapes']) + ' |')
    step = report.get('resnet50_step')
    if step:
        lines += ['', f'ResNet-50 step, batch {report["step_batch"]}, bf16:',
                  '', '| loss | ms / step | vs BCE | peak MiB |',
                  '|---|---|---|---|']
        for name, row in step.items():
            peak = row.get('peak_mib')
            lines.append(f'| {name} | {row["ms"]:.2f} | '
                         f'{row["overhead_pct"]:+.2f}% | '
                         f'{"n/a" if peak is None else f"{peak:.0f}"} |')
    thr = report['throughput']
    ref = thr['plain_loop']['images_per_s']
    lines += ['', f'Training throughput, configs/twoway_coco_r50.py, batch '
              f'{report["batch"]}, {report["workers"]} workers, '
              f'{report["iterations"]} iterations ({report["warmup"]} '
              'warm-up not timed):', '',
              '| run | images/s | vs plain loop | peak MiB |',
              '|---|---|---|---|']
    for name in ('runner', 'plain_loop', 'dataloader_only', 'step_only'):
        row = thr[name]
        peak = row.get('peak_mib')
        lines.append(f'| {name.replace("_", " ")} | '
                     f'{row["images_per_s"]:.1f} | '
                     f'{100 * row["images_per_s"] / ref:.1f}% | '
                     f'{"n/a" if peak is None else f"{peak:.0f}"} |')
    return '\n'.join(lines) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the checks; return the report (also written as json / md)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--smoke', action='store_true',
                        help='tiny sizes (CPU test of the script)')
    parser.add_argument('--device', default='cuda' if
                        torch.cuda.is_available() else 'cpu')
    parser.add_argument('--json', help='write the report here')
    parser.add_argument('--md', help='write markdown tables here')
    parser.add_argument('--work-dir', help='synthetic data and logs '
                        '(default: a temporary folder)')
    parser.add_argument('--threads', type=int,
                        help='torch CPU threads (default: torch\'s choice)')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        shapes, repeat, step_batch, step_size, step_repeat, step_warmup = (
            [(16, 8), (16, 62), (64, 8)], 3, 2, 32, 1, 1)
        num_images, size, crop, batch, workers, epochs, warmup = (
            8, (96, 72), 32, 4, 0, 2, 1)
    else:
        shapes = [(128, 80), (128, 620), (512, 80)]
        repeat, step_batch, step_size, step_repeat, step_warmup = (
            200, 128, 224, 30, 10)
        # COCO-sized JPEGs; 8 epochs of 8 iterations, the first 8 untimed.
        num_images, size, crop, batch, workers, epochs, warmup = (
            1024, (640, 480), None, 128, 8, 8, 8)
    bench_loss = load_bench_loss()
    name = (torch.cuda.get_device_name(device)
            if device.type == 'cuda' else f'CPU x{torch.get_num_threads()}')
    print(f'gpu_check: device {name}, torch {torch.__version__}', flush=True)
    start = time.perf_counter()
    report = dict(device=name, torch=torch.__version__, smoke=args.smoke,
                  shapes=[f'{m}x{c}' for m, c in shapes], batch=batch,
                  workers=workers, step_batch=step_batch, warmup=warmup)
    report['loss_ms'] = {
        'fp32': bench_loss.loss_table(device, repeat, torch.float32, shapes,
                                      step_warmup)
    }
    if device.type == 'cuda':
        report['loss_ms']['bf16'] = bench_loss.loss_table(
            device, repeat, torch.bfloat16, shapes, step_warmup)
    report['resnet50_step'] = bench_loss.resnet_step(
        device, step_repeat, step_batch, step_size, step_warmup)
    reset_peak(device)  # the ResNet step's memory is not the runs' below

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or tmp
        data_root = osp.join(work, 'coco_synthetic')
        t0 = time.perf_counter()
        write_coco_jpegs(data_root, num_images, *size)
        print(f'\n{num_images} synthetic COCO JPEGs {size[0]}x{size[1]} in '
              f'{time.perf_counter() - t0:.1f} s', flush=True)
        cfg = load_config(data_root, osp.join(work, 'runner'), batch,
                          workers, crop, epochs)
        throughput = dict(runner=runner_throughput(cfg, device, warmup))
        throughput.update(plain_throughput(cfg, device, epochs, warmup))
    report['throughput'] = throughput
    report['iterations'] = throughput['runner']['iterations']
    report['seconds'] = time.perf_counter() - start
    print('\nthroughput, images/s (data loading included where it applies)')
    for key, row in throughput.items():
        print(f'{key:16s}{row["images_per_s"]:10.1f}   peak MiB '
              f'{row.get("peak_mib")}')
    ratio = (throughput['runner']['images_per_s'] /
             throughput['plain_loop']['images_per_s'])
    print(f'runner / plain loop: {100 * ratio:.1f}%; total '
          f'{report["seconds"]:.0f} s', flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
    if args.md:
        with open(args.md, 'w') as f:
            f.write(to_markdown(report))
    return report


if __name__ == '__main__':
    main()
