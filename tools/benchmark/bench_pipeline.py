"""Images/s per CPU core of training data pipelines on COCO-sized JPEGs.

    python tools/benchmark/bench_pipeline.py [--images 200] [--rounds 3]
        [--md OUT.md] [--json OUT.json]
    python tools/benchmark/bench_pipeline.py --smoke   # tiny, for tests

The JPEGs are made offline from scikit-learn's two sample photos, cropped
and rescaled to frequent MS-COCO 2014 sizes (quality 90). Every row runs in
this one process with one torch / OpenCV thread; the rows take turns within
each round and each keeps its best of ``--rounds`` rounds, so that all rows
see the same machine load. The last column is the ratio to the authors'
torchvision pipeline. Rows:

* decode only: OpenCV, Pillow (torchvision's loader, RGB), Pillow at half
  size (``Image.draft``), ``torchvision.io.decode_jpeg`` (mmtwoway's
  default decoder);
* mmtwoway's COCO train pipeline (``configs/_base_/datasets/coco.py``:
  the dataloader workers' share; colour jitter and lighting run in the data
  preprocessor on the device), the same with the JPEG decoding left to the
  GPU (``decode_on_device``: the workers' share only), the same with the
  preprocessor's jitter and lighting also on this CPU (what a machine
  without a GPU pays), and the previous cv2 pipeline;
* mmpretrain's stock ImageNet train pipeline (cv2, crop, flip);
* the authors' pipeline: Pillow, ``RandomResizedCrop(224)``, flip,
  ``ColorJitter(0.4, 0.4, 0.4)``, ``ToTensor``, PCA lighting (0.1),
  ``Normalize``;
* a ``DataLoader`` with 2 workers feeding the config's data preprocessor
  (on this CPU), timed alone after the other rows; per core = its images/s
  divided by the cores it had (at most 2 workers + the main process).
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
import tempfile
import time
import warnings
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from PIL import Image

import mmtwoway  # noqa: F401  (registers the transforms and preprocessors)
from mmpretrain.registry import MODELS

# Run as a script: put the repository root on the path for ``tools``.
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
from tools.misc.photos import write_coco_photos  # noqa: E402

from pipelines import (MMPRETRAIN_IMAGENET_PIPELINE,  # noqa: E402
                       OLD_TRAIN_PIPELINE, AuthorsDataset, coco_dataset,
                       pil_loader)

HERE = os.path.dirname(os.path.abspath(__file__))
COCO_CFG = os.path.join(HERE, '..', '..', 'configs', '_base_', 'datasets',
                        'coco.py')
AUTHORS = 'authors (torchvision)'


def read(path: str) -> bytes:
    with open(path, 'rb') as f:
        return f.read()


def decode_rows(paths: Sequence[str]) -> Dict[str, Callable[[], None]]:
    """Decoding alone, from the file, four ways."""
    from torchvision.io import ImageReadMode, decode_jpeg

    def cv2_decode():
        for p in paths:
            cv2.imdecode(np.frombuffer(read(p), np.uint8), cv2.IMREAD_COLOR)

    def pillow():
        for p in paths:
            pil_loader(p)

    def pillow_half():
        for p in paths:
            with open(p, 'rb') as f:
                img = Image.open(f)
                img.draft('RGB', (img.size[0] // 2, img.size[1] // 2))
                img.convert('RGB')

    def tv_decode():
        for p in paths:
            data = torch.frombuffer(bytearray(read(p)), dtype=torch.uint8)
            decode_jpeg(data, mode=ImageReadMode.RGB)

    return {'decode only: cv2': cv2_decode,
            'decode only: Pillow': pillow,
            'decode only: Pillow at 1/2 size': pillow_half,
            'decode only: torchvision.io': tv_decode}


def dataset_row(dataset, after: Optional[Callable] = None,
                batch: int = 32) -> Callable[[], None]:
    """Every sample of a dataset once; ``after`` gets each batch of
    ``batch`` samples (the data preprocessor's CPU share)."""

    def run():
        samples = []
        for i in range(len(dataset)):
            samples.append(dataset[i])
            if after is not None and (len(samples) == batch
                                      or i == len(dataset) - 1):
                after(default_collate(samples))
                samples = []

    return run


def cfg_pipelines(cfg: Config, scale: int) -> Dict[str, List[dict]]:
    """The config's train pipeline, with and without decoding on the
    device, at ``scale`` pixels."""
    pipeline = [dict(t) for t in cfg.train_pipeline]
    assert pipeline[0]['type'] == 'DecodeRandomResizedCrop', pipeline
    pipeline[0]['scale'] = scale
    device = [dict(pipeline[0], decode_on_device=True),
              dict(type='PackInputs', meta_keys=('img_path', 'decode_plan'))]
    return dict(cpu=pipeline, device=device)


def loader_rate(dataset, preprocessor, batch: int, workers: int,
                rounds: int) -> float:
    """images/s of a DataLoader (``workers`` processes) feeding the data
    preprocessor in this process; best of ``rounds`` epochs after one
    warm-up epoch."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, num_workers=workers, shuffle=False,
        collate_fn=default_collate, persistent_workers=workers > 0)
    best = 0.
    for epoch in range(rounds + 1):
        start, count = time.perf_counter(), 0
        for data in loader:
            preprocessor(data, True)
            count += data['inputs'].size(0)
        if epoch:  # the first epoch starts the workers
            best = max(best, count / (time.perf_counter() - start))
    del loader
    return best


def to_markdown(report: dict) -> str:
    """The results as a markdown table."""
    lines = [
        f'{report["images"]} COCO-sized JPEGs (photos, quality 90); '
        f'{report["machine"]}; one process, 1 torch / OpenCV thread, '
        f'best of {report["rounds"]} interleaved rounds'
        + (' (SMOKE RUN: tiny, figures meaningless)' if report['smoke']
           else '') + '.', '',
        '| pipeline | images/s per core | ms / image | vs authors |',
        '|---|---|---|---|'
    ]
    for row in report['rows']:
        lines.append(f'| {row["name"]} | {row["per_core"]:.0f} | '
                     f'{1000 / row["per_core"]:.2f} | '
                     f'{row["vs_authors"]:.2f}x |')
    return '\n'.join(lines) + '\n'


def machine() -> str:
    """CPU model, cores available, load average."""
    model = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            model = next(line.split(':', 1)[1].strip() for line in f
                         if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0))
    load = ', '.join(f'{v:.1f}' for v in os.getloadavg())
    return f'{model}, {cores} cores, load average {load} at the start'


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the benchmark; return (and print) the report."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=200)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--workers', type=int, default=2,
                        help='DataLoader workers of the last row')
    parser.add_argument('--smoke', action='store_true',
                        help='8 small images, 1 round, 64-px crops')
    parser.add_argument('--work-dir', help='where the JPEGs are written '
                        '(default: a temporary folder)')
    parser.add_argument('--json', help='write the report here')
    parser.add_argument('--md', help='write the markdown table here')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    init_default_scope('mmpretrain')
    # torchvision.io warns of its deprecation on every decode.
    warnings.filterwarnings('ignore', 'The image decoding', DeprecationWarning)
    # mmcv's ColorJitter (the previous pipeline) warns on every image.
    warnings.filterwarnings('ignore', "Only use 'alpha'", UserWarning)
    scale, sizes, batch = 224, None, 32
    if args.smoke:
        args.images, args.rounds, scale, batch = 8, 1, 64, 4
        sizes = [(160, 120), (120, 160), (200, 150)]
    report = dict(images=args.images, rounds=args.rounds, smoke=args.smoke,
                  machine=machine(), rows=[])
    with tempfile.TemporaryDirectory() as tmp:
        root = args.work_dir or tmp
        t0 = time.perf_counter()
        write_coco_photos(root, args.images, sizes=sizes)
        print(f'{args.images} JPEGs written in {time.perf_counter() - t0:.1f}'
              f' s; {report["machine"]}', flush=True)
        folder = os.path.join(root, 'train2014')
        paths = sorted(os.path.join(folder, n) for n in os.listdir(folder))
        cfg = Config.fromfile(COCO_CFG)
        ours = cfg_pipelines(cfg, scale)
        old = [dict(t) for t in OLD_TRAIN_PIPELINE]
        stock = [dict(t) for t in MMPRETRAIN_IMAGENET_PIPELINE]
        old[1]['scale'] = stock[1]['scale'] = scale
        preprocessor = MODELS.build(dict(cfg.data_preprocessor, seed=0))
        new = coco_dataset(root, ours['cpu'])
        authors = AuthorsDataset(root, size=scale)
        rows = decode_rows(paths)
        rows.update({
            'mmtwoway COCO train (workers; jitter on the device)':
            dataset_row(new),
            'mmtwoway COCO train, JPEG decoded on the GPU (workers only)':
            dataset_row(coco_dataset(root, ours['device'])),
            'mmtwoway COCO train + preprocessor on this CPU':
            dataset_row(new, lambda data: preprocessor(data, True), batch),
            'mmtwoway previous cv2 pipeline': dataset_row(
                coco_dataset(root, old)),
            'mmpretrain ImageNet pipeline (cv2, crop, flip)': dataset_row(
                coco_dataset(root, stock)),
            AUTHORS: dataset_row(authors),
        })
        best = {name: float('inf') for name in rows}
        for r in range(args.rounds):
            for name, run in rows.items():
                np.random.seed(r)
                torch.manual_seed(r)
                start = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - start)
            print(f'round {r + 1}/{args.rounds} done', flush=True)
        rates = {name: len(paths) / t for name, t in best.items()}
        cores = min(args.workers + 1, len(os.sched_getaffinity(0)))
        loader = loader_rate(new, preprocessor, batch, args.workers,
                             args.rounds)
    name = (f'DataLoader, {args.workers} workers + data preprocessor '
            f'(CPU), per core of {cores}')
    rates[name] = loader / cores
    for key, rate in rates.items():
        report['rows'].append(dict(name=key, per_core=rate,
                                   vs_authors=rate / rates[AUTHORS]))
    report['loader_images_per_s'] = loader
    print('\n' + to_markdown(report), flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
    if args.md:
        with open(args.md, 'w') as f:
            f.write(to_markdown(report))
    return report


if __name__ == '__main__':
    main()
