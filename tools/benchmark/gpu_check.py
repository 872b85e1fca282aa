"""GPU check of mmtwoway: the device path and its speed (gpu_check.sh).

    python tools/benchmark/gpu_check.py [--json OUT.json] [--md OUT.md]
    python tools/benchmark/gpu_check.py --smoke    # tiny sizes, any device

Sections, each written to the report as soon as it ends (a later failure
or time-out keeps the earlier results):

1. loss forward+backward, two-way vs BCE vs ASL, at (M, C) = (128, 80),
   (128, 620), (512, 80) (``bench_loss.loss_table``, fp32 and bf16);
2. the ResNet-50 bf16 training-step overhead of two-way vs BCE at batch 128,
   with peak memory (``bench_loss.resnet_step``);
3. ``configs/twoway_coco_r50.py`` trained by the real mmengine Runner
   (16 dataloader workers) on COCO-sized photo JPEGs in the COCO 2014
   layout (targets built on the device, losses logged without syncs), then
   validated with ``MultiLabelMAP`` and ``MultiLabelF1`` on a val2014 split;
4. the same with the JPEGs decoded on the GPU
   (``configs/twoway_coco_r50_gpu_decode.py``);
5. ``configs/twoway_voc07_r50.py`` validated on a synthetic VOC 2007 split
   with difficult objects (``gt_label_difficult`` meets CUDA labels);
6. a plain PyTorch loop with the same model, data preprocessor, batch,
   loss, optimiser and AMP on the same data, the dataloader alone and the
   training step alone (the model-only step rate), with the peak device
   memory of each;
7. a plain loop fed by the authors' torchvision pipeline (Pillow, crop,
   flip, ColorJitter, lighting, normalisation in the workers).

``--smoke`` shrinks everything (tiny JPEGs, 32-px crops, batch 4) so that
the CPU path can be tested anywhere; its figures mean nothing.
"""
import argparse
import json
import os.path as osp
import sys
import tempfile
import time
from typing import Optional, Sequence

import torch

import mmtwoway  # noqa: F401  (registers mmtwoway; applies stack fixes)
from mmengine.config import Config
from mmtwoway.utils.runtime import adapt_to_machine

# Run as a script: put the repository root on the path for ``tools``.
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
from tools.misc.photos import write_coco_photos  # noqa: E402
from tools.misc.synthetic import write_voc_jpegs  # noqa: E402

import bench_loss  # noqa: E402  (sibling module: tools/benchmark/)
from throughput import (authors_throughput, plain_throughput,  # noqa
                        reset_peak, runner_throughput, runner_validation)

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
CONFIGS = osp.join(ROOT, 'configs')


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


def coco_config(data_root: str, work_dir: str, batch: int, workers: int,
                crop: Optional[int], epochs: int,
                name: str = 'twoway_coco_r50.py') -> Config:
    """``configs/<name>`` pointed at the synthetic data.

    Only what a benchmark must change is changed: the data root, no
    pretrained download, one validation after the last epoch, no
    checkpoints, and (smoke only) smaller crops, batch and buckets.
    """
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    cfg.work_dir = work_dir
    cfg.train_dataloader.dataset.data_root = data_root
    cfg.val_dataloader.dataset.data_root = data_root
    shrink(cfg, batch, workers, crop)
    cfg.train_cfg = dict(by_epoch=True, max_epochs=epochs,
                         val_interval=epochs)
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)
    return adapt_to_machine(cfg)


def voc_config(data_root: str, work_dir: str, batch: int, workers: int,
               crop: Optional[int]) -> Config:
    """``configs/twoway_voc07_r50.py``'s validation on the synthetic data."""
    cfg = Config.fromfile(osp.join(CONFIGS, 'twoway_voc07_r50.py'))
    cfg.work_dir = work_dir
    cfg.val_dataloader.dataset.data_root = data_root
    shrink(cfg, batch, workers, crop)
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'test_dataloader', 'test_evaluator',
                'test_cfg'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = None  # no best-checkpoint bookkeeping
    return adapt_to_machine(cfg)


LABELS = dict(runner='Runner, CPU decoding (the config)',
              runner_gpu_decode='Runner, GPU decoding',
              plain_loop='plain loop, the config\'s pipeline',
              authors_loop='plain loop, the authors\' torchvision pipeline',
              dataloader_only='dataloader alone (config)',
              step_only='training step alone (model only)')


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
    thr = report.get('throughput', {})
    if 'runner' in thr and thr['runner'].get('val_metrics'):
        lines += ['', 'Runner validation (synthetic COCO val2014; random '
                  'labels, so the values only show that it ran): ' +
                  ', '.join(f'{k} {v:.2f}' for k, v in
                            thr['runner']['val_metrics'].items())]
    if report.get('voc_val'):
        lines += ['', 'VOC 2007 validation with difficult objects: ' +
                  ', '.join(f'{k} {v:.2f}' for k, v in
                            report['voc_val'].items())]
    if 'plain_loop' not in thr:
        return '\n'.join(lines) + '\n'
    ref = thr['plain_loop']['images_per_s']
    step = thr['step_only']['images_per_s']
    lines += ['', f'Training throughput, configs/twoway_coco_r50.py, batch '
              f'{report["batch"]}, {report["workers"]} workers, '
              f'{report["iterations"]} iterations ({report["warmup"]} '
              'warm-up not timed):', '',
              '| run | images/s | vs plain loop | vs step only | peak MiB |',
              '|---|---|---|---|---|']
    for name in ('runner', 'runner_gpu_decode', 'plain_loop',
                 'authors_loop', 'dataloader_only', 'step_only'):
        row = thr.get(name)
        if row is None:
            continue
        peak = row.get('peak_mib')
        lines.append(f'| {LABELS.get(name, name.replace("_", " "))} | '
                     f'{row["images_per_s"]:.1f} | '
                     f'{100 * row["images_per_s"] / ref:.1f}% | '
                     f'{100 * row["images_per_s"] / step:.1f}% | '
                     f'{"n/a" if peak is None else f"{peak:.0f}"} |')
    return '\n'.join(lines) + '\n'


def save(report: dict, args: argparse.Namespace) -> None:
    """Write the report so far (json and markdown)."""
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
    if args.md:
        with open(args.md, 'w') as f:
            f.write(to_markdown(report))


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
        # COCO-sized photo JPEGs; 6 epochs of 8 iterations, the first 8
        # untimed; 16 workers, the CPU cores of one H200 machine.
        num_images, size, crop, batch, workers, epochs, warmup = (
            1024, None, None, 128, 16, 6, 8)
    name = (torch.cuda.get_device_name(device)
            if device.type == 'cuda' else f'CPU x{torch.get_num_threads()}')
    print(f'gpu_check: device {name}, torch {torch.__version__}', flush=True)
    start = time.perf_counter()
    report = dict(device=name, torch=torch.__version__, smoke=args.smoke,
                  shapes=[f'{m}x{c}' for m, c in shapes], batch=batch,
                  workers=workers, step_batch=step_batch, warmup=warmup,
                  sections=[])

    def done(section: str) -> None:
        report['sections'].append(section)
        report['seconds'] = time.perf_counter() - start
        save(report, args)
        print(f'gpu_check: {section} done at {report["seconds"]:.0f} s',
              flush=True)

    report['loss_ms'] = {
        'fp32': bench_loss.loss_table(device, repeat, torch.float32, shapes,
                                      step_warmup)
    }
    if device.type == 'cuda':
        report['loss_ms']['bf16'] = bench_loss.loss_table(
            device, repeat, torch.bfloat16, shapes, step_warmup)
    done('loss')
    report['resnet50_step'] = bench_loss.resnet_step(
        device, step_repeat, step_batch, step_size, step_warmup)
    done('resnet50_step')
    reset_peak(device)  # the ResNet step's memory is not the runs' below

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or tmp
        coco_root = osp.join(work, 'coco_synthetic')
        t0 = time.perf_counter()
        sizes = [size] if size else None  # None: COCO's frequent sizes
        write_coco_photos(coco_root, num_images, 'train2014', sizes=sizes)
        write_coco_photos(coco_root, max(batch, num_images // 8), 'val2014',
                          seed=1, sizes=sizes)
        print(f'\n{num_images} COCO-sized photo JPEGs in '
              f'{time.perf_counter() - t0:.1f} s', flush=True)
        cfg = coco_config(coco_root, osp.join(work, 'runner'), batch,
                          workers, crop, epochs)
        throughput = dict(runner=runner_throughput(cfg, device, warmup))
        report['throughput'] = throughput
        report['iterations'] = throughput['runner']['iterations']
        done('runner')
        throughput['runner_gpu_decode'] = runner_throughput(
            coco_config(coco_root, osp.join(work, 'runner_gpu'), batch,
                        workers, crop, epochs,
                        'twoway_coco_r50_gpu_decode.py'), device, warmup)
        done('runner_gpu_decode')

        voc_root = osp.join(work, 'VOC2007')
        write_voc_jpegs(voc_root, max(2 * batch, 16), *(size or (500, 375)))
        report['voc_val'] = runner_validation(
            voc_config(voc_root, osp.join(work, 'voc'), batch, workers,
                       crop))
        done('voc_val')

        throughput.update(plain_throughput(cfg, device, epochs, warmup))
        done('plain')
        throughput['authors_loop'] = authors_throughput(
            cfg, device, coco_root, epochs, warmup, crop or 224)
        done('authors_loop')
    print('\nthroughput, images/s (data loading included where it applies)')
    for key, row in throughput.items():
        print(f'{key:16s}{row["images_per_s"]:10.1f}   peak MiB '
              f'{row.get("peak_mib")}')
    ratio = (throughput['runner']['images_per_s'] /
             throughput['plain_loop']['images_per_s'])
    step = (throughput['runner']['images_per_s'] /
            throughput['step_only']['images_per_s'])
    print(f'runner / plain loop: {100 * ratio:.1f}%; runner / step only: '
          f'{100 * step:.1f}%; total {report["seconds"]:.0f} s', flush=True)
    return report


if __name__ == '__main__':
    main()
