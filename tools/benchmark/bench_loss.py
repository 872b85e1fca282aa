"""Forward+backward time of TwoWayLoss beside BCE and ASL, and the ResNet-50
training-step overhead of two-way vs BCE when a GPU is present.

    python tools/benchmark/bench_loss.py [--repeat 200] [--device cuda]

"two-way (bool-mask)" is a baseline written the way public implementations
are: boolean-mask indexing of the valid rows, which makes the host wait for
the device every step. mmtwoway's TwoWayLoss never does.
"""
import argparse
import time
from typing import Callable, Dict, Sequence, Tuple

import torch
import torch.nn.functional as F

import mmtwoway  # noqa: F401
from mmpretrain.models.losses import AsymmetricLoss
from mmtwoway.models.losses import TwoWayLoss

SHAPES = [(128, 80), (128, 620), (512, 80)]


def bool_mask_two_way(x: torch.Tensor, y: torch.Tensor, tp: float = 4.,
                      tn: float = 1.) -> torch.Tensor:
    """Two-way loss with a finite fill and boolean-mask indexing (baseline)."""
    x = x.float()
    total = 0.
    for dim in (0, 1):
        neg = tn * torch.logsumexp(
            torch.where(y == 0, x / tn, torch.full_like(x, -1e4)), dim)
        pos = tp * torch.logsumexp(
            torch.where(y > 0, -x / tp, torch.full_like(x, -1e4)), dim)
        valid = (y > 0).any(dim)
        total = total + F.softplus(neg + pos)[valid].mean()  # host sync
    return total


def timed(fn: Callable[[], None],
          repeat: int,
          device: torch.device,
          warmup: int = 10) -> float:
    """Mean milliseconds per call after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    if device.type == 'cuda':
        torch.cuda.synchronize()
        start, end = (torch.cuda.Event(enable_timing=True),
                      torch.cuda.Event(enable_timing=True))
        start.record()
        for _ in range(repeat):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / repeat
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) * 1000 / repeat


def loss_table(device: torch.device,
               repeat: int,
               dtype: torch.dtype,
               shapes: Sequence[Tuple[int, int]] = SHAPES,
               warmup: int = 10) -> Dict[str, Dict[str, float]]:
    """Print and return the forward+backward time of each loss.

    Args:
        device (torch.device): Where to run.
        repeat (int): Timed calls per loss and shape.
        dtype (torch.dtype): dtype of the logits.
        shapes (Sequence[tuple[int, int]]): (M, C) logit shapes.
        warmup (int): Untimed calls first. Defaults to 10.

    Returns:
        dict[str, dict[str, float]]: loss name -> ``'MxC'`` -> ms per call.
    """
    losses = {
        'BCE-with-logits': lambda x, y: F.binary_cross_entropy_with_logits(
            x.float(), y),
        'ASL (mmpretrain)': AsymmetricLoss(
            gamma_pos=0., gamma_neg=4., clip=0.05).to(device),
        'two-way (bool-mask)': bool_mask_two_way,
        'two-way (mmtwoway)': TwoWayLoss().to(device),
    }
    print(f'\nloss forward+backward, ms per call ({device}, {dtype})')
    print(f'{"loss":22s}' + ''.join(f'{f"{m}x{c}":>12s}' for m, c in shapes))
    table = {}
    for name, loss in losses.items():
        row = []
        for m, c in shapes:
            g = torch.Generator(device='cpu').manual_seed(0)
            x = torch.randn(m, c, generator=g).to(device, dtype)
            x.requires_grad_(True)
            y = (torch.rand(m, c, generator=g) < 0.04).float().to(device)

            def step():
                x.grad = None
                loss(x, y).backward()

            row.append(timed(step, repeat, device, warmup))
        print(f'{name:22s}' + ''.join(f'{t:12.3f}' for t in row))
        table[name] = {f'{m}x{c}': t for (m, c), t in zip(shapes, row)}
    return table


class ResNet50Classifier(torch.nn.Module):
    """mmpretrain's ResNet-50, global average pooling and an 80-way fc."""

    def __init__(self, num_classes: int = 80) -> None:
        super().__init__()
        from mmpretrain.models.backbones import ResNet
        self.backbone = ResNet(depth=50)
        self.fc = torch.nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(x)[-1].mean((2, 3)))


def resnet_step(device: torch.device,
                repeat: int,
                batch: int = 128,
                size: int = 224,
                warmup: int = 10) -> Dict[str, Dict[str, float]]:
    """ResNet-50, batch 128, bf16 autocast, channels_last, SGD.

    Args:
        device (torch.device): Where to run.
        repeat (int): Timed steps per loss.
        batch (int): Batch size. Defaults to 128.
        size (int): Image side. Defaults to 224.
        warmup (int): Untimed steps first. Defaults to 10.

    Returns:
        dict[str, dict[str, float]]: loss name -> ``ms`` per step,
        ``overhead_pct`` vs BCE and, on CUDA, ``peak_mib`` (peak allocated
        memory of the step).
    """
    model = ResNet50Classifier().to(device).to(
        memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    images = torch.randn(batch, 3, size, size, device=device).to(
        memory_format=torch.channels_last)
    target = (torch.rand(batch, 80, device=device) < 0.04).float()
    print(f'\nResNet-50 training step, batch {batch}, {size}px, bf16 '
          'autocast, ms')
    results = {}
    table = {}
    for name, loss in [('BCE', lambda x, y: F.binary_cross_entropy_with_logits(
            x.float(), y)), ('two-way (bool-mask)', bool_mask_two_way),
                       ('two-way (mmtwoway)', TwoWayLoss())]:

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                logits = model(images)
            loss(logits, target).backward()
            opt.step()

        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        results[name] = timed(step, repeat, device, warmup)
        overhead = 100 * (results[name] / results['BCE'] - 1)
        table[name] = dict(ms=results[name], overhead_pct=overhead)
        if device.type == 'cuda':
            table[name]['peak_mib'] = torch.cuda.max_memory_allocated(
                device) / 2**20
        print(f'{name:22s}{results[name]:10.2f}   {overhead:+.2f}% vs BCE')
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=200)
    parser.add_argument('--step-repeat', type=int, default=30)
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()
    device = torch.device(args.device)
    name = (torch.cuda.get_device_name(device)
            if device.type == 'cuda' else f'CPU x{torch.get_num_threads()}')
    print(f'device: {name}, torch {torch.__version__}')
    loss_table(device, args.repeat, torch.float32)
    if device.type == 'cuda':
        loss_table(device, args.repeat, torch.bfloat16)
        resnet_step(device, args.step_repeat)
    else:
        print('\nNo GPU: the ResNet-50 step overhead is measured on CUDA only.')


if __name__ == '__main__':
    main()
