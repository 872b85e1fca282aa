"""GPU check of mmtwoway: the device path and its speed (gpu_check.sh).

    python tools/benchmark/gpu_check.py [--json OUT.json] [--md OUT.md]
    python tools/benchmark/gpu_check.py --smoke    # tiny sizes, any device
    python tools/benchmark/gpu_check.py --only loss,sync_debug

Sections (``SECTIONS``, in this order; each a function in
``gpu_check_sections.py``):

loss              loss fwd+bwd, two-way vs BCE vs ASL (fp32 and bf16)
resnet50_step     the ResNet-50 bf16 step overhead of two-way vs BCE
data              COCO-sized photo JPEGs (COCO 2014 layout), a VOC split
runner            configs/twoway_coco_r50.py by mmengine's Runner (fp16,
                  the check hooks of tools/train.py), then validated
sync_debug        20 Runner steps in fp16 and in bf16 under
                  torch.cuda.set_sync_debug_mode('warn'), warnings counted
runner_bf16       the Runner with --bf16
runner_gpu_decode the Runner with the JPEGs decoded on the GPU
nvjpeg            tools/benchmark/gpu_nvjpeg.py, where present
dist_train        tools/dist_train.sh CONFIG 1 (torchrun, NCCL)
voc_val           twoway_voc07_r50.py validated with difficult objects
plain             a plain PyTorch loop, the dataloader and the step alone
authors_loop      a plain loop fed by the authors' torchvision pipeline

Each section runs isolated: an exception is written to the report with
its traceback and the next section runs; the report (json, and markdown
with a summary of every section that ran) is written after each one.
Sections that would start after ``--budget`` seconds are skipped (listed).
``--smoke`` shrinks everything (tiny JPEGs, 32-px crops, batch 4) so that
the CPU path can be tested anywhere; its figures mean nothing.
"""
import argparse
import gc
import json
import os.path as osp
import sys
import tempfile
import time
import traceback
from typing import Callable, List, Optional, Sequence, Tuple

import torch

import mmtwoway_stack_fixes  # noqa: F401  (first: see docs/stack_fixes.md)
import mmtwoway  # noqa: F401  (registers mmtwoway)

# Run as a script: the repository root on the path for ``tools``.
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import gpu_check_sections as sec  # noqa: E402  (sibling module)
from gpu_check_report import to_markdown  # noqa: E402

Section = Tuple[str, Callable[[sec.Context], Optional[str]]]

SECTIONS: List[Section] = [
    ('loss', sec.loss),
    ('resnet50_step', sec.resnet50_step),
    ('data', sec.data),
    ('runner', sec.runner),
    ('sync_debug', sec.sync_debug),
    ('runner_bf16', sec.runner_bf16),
    ('runner_gpu_decode', sec.runner_gpu_decode),
    ('nvjpeg', sec.nvjpeg),
    ('dist_train', sec.dist_train),
    ('voc_val', sec.voc_val),
    ('plain', sec.plain),
    ('authors_loop', sec.authors_loop),
]

SMOKE = dict(shapes=[(16, 8), (16, 62), (64, 8)], repeat=3, step_batch=2,
             step_size=32, step_repeat=1, step_warmup=1, num_images=8,
             size=(96, 72), crop=32, batch=4, workers=0, epochs=2,
             warmup=1, sync_steps=4, dist_timeout=300)
# COCO-sized photo JPEGs; 6 epochs of 8 iterations, the first 8 untimed;
# 16 workers, the CPU cores of one H100/H200 machine.
FULL = dict(shapes=[(128, 80), (128, 620), (512, 80)], repeat=200,
            step_batch=128, step_size=224, step_repeat=30, step_warmup=10,
            num_images=1024, size=None, crop=None, batch=128, workers=16,
            epochs=6, warmup=8, sync_steps=20, dist_timeout=240)


def run_sections(sections: Sequence[Section], ctx: sec.Context,
                 save: Callable[[], None], budget: Optional[float] = None,
                 start: Optional[float] = None) -> None:
    """Run each section isolated; record status, time, note, traceback.

    A failing section's exception and traceback go to the report and the
    next section runs; ``save`` is called after each section.
    """
    start = time.perf_counter() if start is None else start
    records = ctx.report.setdefault('sections', [])
    for title, function in sections:
        t0 = time.perf_counter()
        record = dict(title=title, status='ok', seconds=0., note=None)
        if budget is not None and t0 - start > budget:
            record.update(status='skipped',
                          note=f'time budget of {budget:.0f} s spent')
        else:
            print(f'gpu_check: {title} ...', flush=True)
            try:
                record['note'] = function(ctx)
            except sec.NotAvailable as err:
                record.update(status='not available', note=str(err))
            except Exception as err:  # isolated: record it, go on
                record.update(status='failed',
                              note=f'{type(err).__name__}: '
                              f'{str(err).splitlines()[0] if str(err) else ""}'
                              [:200], traceback=traceback.format_exc())
                print(record['traceback'], flush=True)
            finally:
                _free(ctx.device)
        record['seconds'] = time.perf_counter() - t0
        records.append(record)
        ctx.report['seconds'] = time.perf_counter() - start
        save()
        print(f'gpu_check: {title} {record["status"]} in '
              f'{record["seconds"]:.0f} s ({record["note"]})', flush=True)


def _free(device: torch.device) -> None:
    """Release what a (failed) section left on the device."""
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def save(report: dict, args: argparse.Namespace) -> None:
    """Write the report so far (json and markdown)."""
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
    if args.md:
        with open(args.md, 'w') as f:
            f.write(to_markdown(report))


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    names = [title for title, _ in SECTIONS]
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
    parser.add_argument('--only', help='comma-separated sections to run, of '
                        + ', '.join(names) + ' (default: all; the Runner '
                        'sections need data)')
    parser.add_argument('--budget', type=float, default=450.,
                        help='start no section after this many seconds '
                        '(default 450: the whole check within 8 minutes)')
    args = parser.parse_args(argv)
    if args.only:
        only = [s.strip() for s in args.only.split(',') if s.strip()]
        unknown = sorted(set(only) - set(names))
        if unknown:
            parser.error(f'--only: unknown section(s) {unknown}; choose '
                         f'from {", ".join(names)}')
        args.only = only
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the sections; return the report (also written as json / md)."""
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = SMOKE if args.smoke else FULL
    name = (torch.cuda.get_device_name(device)
            if device.type == 'cuda' else f'CPU x{torch.get_num_threads()}')
    print(f'gpu_check: device {name}, torch {torch.__version__}', flush=True)
    start = time.perf_counter()
    report = dict(device=name, torch=torch.__version__, smoke=args.smoke,
                  shapes=[f'{m}x{c}' for m, c in sizes['shapes']],
                  batch=sizes['batch'], workers=sizes['workers'],
                  step_batch=sizes['step_batch'], warmup=sizes['warmup'],
                  sections=[])
    sections = [s for s in SECTIONS if not args.only or s[0] in args.only]
    with tempfile.TemporaryDirectory() as tmp:
        ctx = sec.Context(args, device, sizes, args.work_dir or tmp, report)
        run_sections(sections, ctx, lambda: save(report, args), args.budget,
                     start)
    failed = [r['title'] for r in report['sections']
              if r['status'] == 'failed']
    print(f'gpu_check: {len(report["sections"])} sections in '
          f'{report["seconds"]:.0f} s; failed: {", ".join(failed) or "none"}'
          , flush=True)
    return report


if __name__ == '__main__':
    result = main()
    # Every section ran (or was recorded); a failure still makes the exit
    # status say so.
    raise SystemExit(int(any(r['status'] == 'failed'
                             for r in result['sections'])))
