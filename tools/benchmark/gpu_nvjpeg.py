"""nvJPEG against the CPU decoder on photo JPEGs, with and without work
queued on the stream (the gpu_check section of GPU JPEG decoding).

    python tools/benchmark/gpu_nvjpeg.py [--smoke] [--out-dir DIR]

Each round first queues about 100 ms of GPU work that ends by writing
blocks the size of the decoded images, frees them at once (the caching
allocator hands them out again while those writes are still queued), then
decodes the photos. Rows: mmtwoway's ``decode_batch`` (the stream drained
before the hardware decode) with an empty queue and with the queued work,
and torchvision's ``decode_jpeg`` called without the drain. A corrupted
image is one whose checksum differs from the same decoder's result with an
empty queue; the pixel difference is against libjpeg-turbo on the CPU.
"""
import argparse
import hashlib
import os
import os.path as osp
import sys
import tempfile
import time
import warnings
from typing import Callable, List, Tuple

import torch

from mmtwoway.models.data_preprocessors.device_jpeg import decode_batch

# Run as a script: the repository root on the path for ``tools``.
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
from tools.misc.photos import write_photo_jpegs  # noqa: E402

QUEUED_MS = 100.


def checksum(img: torch.Tensor) -> str:
    """MD5 of an image's pixels (on the host)."""
    return hashlib.md5(img.cpu().contiguous().numpy().tobytes()).hexdigest()


def queue_work(sizes: List[int], device: torch.device,
               matmuls: int) -> None:
    """Queue ``matmuls`` large products, then writes into fresh blocks of
    the given byte sizes, and free those blocks before the writes run."""
    x = torch.randn(4096, 4096, device=device)
    y = x
    for _ in range(matmuls):
        y = y @ x
        y = y / y.abs().amax()  # keep the values finite
    blocks = [torch.empty(n, dtype=torch.uint8, device=device)
              for n in sizes]
    for block in blocks:  # stream order: after the products
        block.fill_(77)
    del blocks  # back to the allocator's cache, writes still queued


def matmuls_for(ms: float, device: torch.device) -> int:
    """How many 4096^2 products take about ``ms`` on this device."""
    x = torch.randn(4096, 4096, device=device)
    (x @ x).sum().item()  # warm up
    start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
    start.record()
    for _ in range(5):
        x @ x
    end.record()
    end.synchronize()
    return max(1, round(ms / (start.elapsed_time(end) / 5)))


def torchvision_undrained(files, paths, device) -> List[torch.Tensor]:
    """``torchvision.io.decode_jpeg`` on the device, nothing drained."""
    from torchvision.io import ImageReadMode, decode_jpeg
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        return decode_jpeg(files, mode=ImageReadMode.RGB, device=device)


def run_rows(files: List[torch.Tensor], paths: List[str],
             device: torch.device, rounds: int, matmuls: int
             ) -> List[Tuple[str, str, float, int, int, float]]:
    """Rows of (decoder, queue, max |diff| vs CPU, corrupted, decoded,
    ms per batch)."""
    from torchvision.io import ImageReadMode, decode_jpeg
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        cpu = [decode_jpeg(f, mode=ImageReadMode.RGB) for f in files]
    sizes = [img.numel() for img in cpu]
    decoders: List[Tuple[str, Callable]] = [
        ('mmtwoway decode_batch (stream drained)', decode_batch),
        ('torchvision decode_jpeg, not drained', torchvision_undrained)]
    rows = []
    for name, decoder in decoders:
        clean = [checksum(img) for img in decoder(files, paths, device)]
        for queue in ('empty', f'~{QUEUED_MS:.0f} ms queued and freed'):
            worst, corrupted, total, seconds = 0., 0, 0, 0.
            for _ in range(rounds):
                if queue != 'empty':
                    queue_work(sizes, device, matmuls)
                tic = time.perf_counter()
                out = decoder(files, paths, device)
                seconds += time.perf_counter() - tic
                torch.cuda.synchronize(device)
                for img, ref, good in zip(out, cpu, clean):
                    host = img.cpu()
                    worst = max(worst, float(
                        (host.int() - ref.int()).abs().max()))
                    corrupted += checksum(host) != good
                    total += 1
            rows.append((name, queue, worst, corrupted, total,
                         1000 * seconds / rounds))
    return rows


def nvjpeg_section(smoke: bool, out_dir: str) -> str:
    """The markdown of the nvJPEG section.

    Args:
        smoke (bool): 8 small photos and 2 rounds instead of 100 and 5.
        out_dir (str): Where the photos are written.

    Returns:
        str: A markdown table, or one line saying why it was skipped.
    """
    if not torch.cuda.is_available():
        return ('*nvJPEG vs CPU decoding: skipped (no CUDA device on this '
                'machine).*\n')
    device = torch.device('cuda')
    num, rounds = (8, 2) if smoke else (100, 5)
    sizes = [(64, 48), (48, 64)] if smoke else None
    paths = write_photo_jpegs(os.path.join(out_dir, 'nvjpeg_photos'), num,
                              sizes=sizes, seed=3)
    files = []
    for path in paths:
        with open(path, 'rb') as f:
            files.append(torch.frombuffer(bytearray(f.read()),
                                          dtype=torch.uint8))
    matmuls = 1 if smoke else matmuls_for(QUEUED_MS, device)
    rows = run_rows(files, paths, device, rounds, matmuls)
    lines = [
        f'nvJPEG ({torch.cuda.get_device_name(device)}, torch '
        f'{torch.__version__}) on {num} photo JPEGs, {rounds} rounds per '
        f'row; queued work: {matmuls} products of 4096 x 4096 then writes '
        'into freed blocks of the decoded sizes.', '',
        '| decoder | queue | max abs diff vs CPU | corrupted / decoded | '
        'ms per batch (incl. waits) |', '|---|---|---:|---:|---:|'
    ]
    for name, queue, worst, corrupted, total, ms in rows:
        lines.append(f'| {name} | {queue} | {worst:.0f} | {corrupted} / '
                     f'{total} | {ms:.1f} |')
    return '\n'.join(lines) + '\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--smoke', action='store_true',
                        help='8 small photos, 2 rounds')
    parser.add_argument('--out-dir', help='where to write the photos '
                        '(default: a temporary folder)')
    args = parser.parse_args()
    if args.out_dir:
        print(nvjpeg_section(args.smoke, args.out_dir))
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(nvjpeg_section(args.smoke, tmp))


if __name__ == '__main__':
    main()
