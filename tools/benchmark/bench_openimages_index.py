"""Build time, cache size and memory of the Open Images label index.

    python tools/benchmark/bench_openimages_index.py WORK_DIR
        [--fraction 0.01] [--workers 4] [--batch-size 256] [--subset N]
        [--out result.json]

Writes a synthetic train split at ``--fraction`` of Open Images V6's size
(9,011,219 images, 9,605 trainable classes, 60M human-verified label rows:
6.66 per image) with ``tools/misc/make_openimages_data.py`` (image files
are hard links to one JPEG), then measures, each in a fresh process:

* build: parsing the CSV files into the cached index (wall and CPU time,
  peak RSS, size of the cache folder);
* load: building the dataset from the cache (memory-mapped);
* epoch: one epoch of ``__getitem__`` (no image decoding: the pipeline is
  empty, so only the index is exercised) with ``--workers`` dataloader
  workers, and each worker's PSS / USS (``/proc/<pid>/smaps_rollup``) after
  its first batches and at the end of the epoch.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

FULL_IMAGES = 9_011_219
FULL_ROWS = 60_000_000
CLASSES = 9605


def _status(field: str, pid: str = 'self') -> int:
    """A ``/proc/<pid>/status`` memory field in bytes."""
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def smaps(pid: int) -> dict:
    """PSS and USS (private clean + dirty) of a process, in MiB."""
    values = {}
    with open(f'/proc/{pid}/smaps_rollup') as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(':'):
                values[parts[0][:-1]] = int(parts[1]) / 1024
    return dict(pss=values.get('Pss', 0.0),
                uss=values.get('Private_Clean', 0.0) +
                values.get('Private_Dirty', 0.0))


def _dataset(root: str, cache: str):
    from mmtwoway.datasets import OpenImagesMultiLabel
    from tools.misc.make_openimages_data import IMAGE_FILES, LABEL_FILES
    return OpenImagesMultiLabel(
        data_root=root, label_files=LABEL_FILES['train'],
        image_files=IMAGE_FILES['train'], img_dirs='train', cache=cache,
        pipeline=[])


def _count(batch: list) -> int:
    """Collate to a number: the workers send nothing large back."""
    return len(batch)


def child(args: argparse.Namespace) -> dict:
    """One measurement (``--step build|load|epoch``) in this process."""
    import mmtwoway  # noqa: F401
    base = _status('VmRSS')
    cache = osp.join(args.work_dir, 'cache')
    start, cpu = time.perf_counter(), time.process_time()
    ds = _dataset(osp.join(args.work_dir, 'tree'), cache)
    seconds = time.perf_counter() - start
    out = dict(seconds=seconds, cpu_seconds=time.process_time() - cpu,
               samples=len(ds),
               labels=int(ds.stats['labels']),
               rss_above_start_mb=(_status('VmRSS') - base) / 2**20,
               peak_above_start_mb=(_status('VmHWM') - base) / 2**20)
    if args.step == 'build':
        out['cache_mb'] = sum(
            os.path.getsize(osp.join(ds.index_dir, f))
            for f in os.listdir(ds.index_dir)) / 2**20
    if args.step == 'epoch':
        out.update(_epoch(ds, args))
    return out


def _epoch(ds, args) -> dict:
    """Iterate one epoch; worker PSS / USS early and at the end."""
    from torch.utils.data import DataLoader, Subset
    data = Subset(ds, range(args.subset)) if args.subset else ds
    loader = DataLoader(data, batch_size=args.batch_size,
                        num_workers=args.workers, collate_fn=_count)
    it = iter(loader)
    pids = [w.pid for w in it._workers]
    total = len(loader)
    early, late = None, None
    start = time.perf_counter()
    seen = 0
    for i, n in enumerate(it):
        seen += n
        if i == min(2 * args.workers, total - 1):
            early = [smaps(p) for p in pids]
        if i == total - 1:
            late = [smaps(p) for p in pids]
    return dict(epoch_seconds=time.perf_counter() - start, epoch_samples=seen,
                workers_early=early, workers_end=late,
                main=smaps(os.getpid()))


def _run(args, step: str) -> dict:
    cmd = [sys.executable, __file__, args.work_dir, '--child', step,
           '--workers', str(args.workers), '--batch-size',
           str(args.batch_size), '--subset', str(args.subset or 0)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f'{step} failed:\n{run.stderr[-3000:]}')
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir')
    parser.add_argument('--fraction', type=float, default=0.01)
    parser.add_argument('--workers', type=int, default=4)
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--subset', type=int, default=0,
                        help='iterate only the first N samples in the epoch')
    parser.add_argument('--out')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.step = args.child
        print(json.dumps(child(args)))
        return
    from tools.misc.make_openimages_data import make
    images = max(1, round(FULL_IMAGES * args.fraction))
    tree = osp.join(args.work_dir, 'tree')
    start = time.perf_counter()
    if not osp.isdir(osp.join(tree, 'train')):
        make(tree, images=images, classes=CLASSES,
             labels_per_image=FULL_ROWS / FULL_IMAGES, files='link')
    generated = time.perf_counter() - start
    cache = osp.join(args.work_dir, 'cache')
    if osp.isdir(cache):
        import shutil
        shutil.rmtree(cache)
    result = dict(fraction=args.fraction, images=images,
                  generate_seconds=generated,
                  build=_run(args, 'build'), load=_run(args, 'load'),
                  epoch=_run(args, 'epoch'))
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()
