"""Training throughput of a config: the mmengine Runner against a plain
PyTorch loop on the same model, data, optimiser and AMP (gpu_check.py)."""
import copy
import gc
import time
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.dataset import default_collate, pseudo_collate
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmpretrain.registry import DATASETS, MODELS

COLLATE = dict(default_collate=default_collate, pseudo_collate=pseudo_collate)


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


class ValMetrics(Hook):
    """Keeps the metrics of the last validation."""

    def __init__(self) -> None:
        self.metrics: Dict[str, float] = {}

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = dict(metrics or {})


def runner_throughput(cfg: Config, device: torch.device,
                      warmup: int) -> Dict[str, object]:
    """images/s of ``Runner.train()`` on the config, and its peak memory.

    Validation (if the config has it) runs after the timed iterations; its
    metrics are returned as ``val_metrics``.
    """
    clock, val = IterClock(device), ValMetrics()
    cfg = copy.deepcopy(cfg)
    reset_peak(device)
    runner = Runner.from_cfg(cfg)
    runner.register_hook(clock, 'VERY_LOW')
    runner.register_hook(val, 'VERY_LOW')
    runner.train()
    result = dict(images_per_s=images_per_second(
        clock.stamps, cfg.train_dataloader.batch_size, warmup),
                  iterations=len(clock.stamps),
                  peak_mib=peak_mib(device),
                  val_metrics=val.metrics)
    del runner
    return result


def runner_validation(cfg: Config) -> Dict[str, float]:
    """The metrics of ``Runner.val()`` on the config (its model as built)."""
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    return dict(runner.val())


def plain_loader(cfg: Config, device: torch.device, dataset=None,
                 collate_fn=None) -> torch.utils.data.DataLoader:
    """A DataLoader with the config's batch and workers, on its train
    dataset (or ``dataset``) and collate function (or ``collate_fn``)."""
    loader_cfg = cfg.train_dataloader
    if dataset is None:
        dataset = DATASETS.build(copy.deepcopy(loader_cfg.dataset))
        collate_fn = COLLATE[loader_cfg.get('collate_fn', {}).get(
            'type', 'pseudo_collate')]
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=loader_cfg.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=loader_cfg.num_workers,
        persistent_workers=loader_cfg.num_workers > 0,
        pin_memory=device.type == 'cuda',
        collate_fn=collate_fn)


def plain_parts(cfg: Config, device: torch.device, loader: bool = True):
    """The config's model, dataset and optimiser, built without mmengine's
    Runner: what a hand-written PyTorch training script would hold."""
    model_cfg = copy.deepcopy(cfg.model)
    # What Runner.build_model does: the config's top-level preprocessor
    # (mean, std, BGR->RGB) is the model's, so both loops do the same work.
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    model = MODELS.build(model_cfg).to(device)
    model.init_weights()
    loader = plain_loader(cfg, device) if loader else None
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
        nesterov=opt_cfg.nesterov,
        fused=opt_cfg.get('fused'))  # the config's kernel, as the Runner
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


def authors_throughput(cfg: Config, device: torch.device, data_root: str,
                       epochs: int, warmup: int,
                       size: int = 224) -> Dict[str, float]:
    """A plain loop fed as the authors' code feeds it: Pillow and
    torchvision's transforms (crop, flip, ColorJitter, ToTensor, lighting,
    Normalize) in the workers, a normalised float batch and a multi-hot
    target tensor; the config's model, loss, optimiser and AMP."""
    from pipelines import AuthorsDataset  # sibling module
    amp = device.type == 'cuda'
    torch.manual_seed(0)
    reset_peak(device)
    model, _, optimizer = plain_parts(cfg, device, loader=False)
    model.train()
    loader = plain_loader(cfg, device, AuthorsDataset(data_root, size),
                          torch.utils.data.default_collate)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    stamps = []
    for _ in range(epochs):
        for inputs, target in loader:
            inputs = inputs.to(device, non_blocking=True)
            target = target.to(device, non_blocking=True)
            with torch.autocast(device.type, enabled=amp):
                logits = model.head(model.extract_feat(inputs))
            loss = model.head.loss_module(logits.float(), target,
                                          avg_factor=inputs.size(0))
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            stamps.append(time.perf_counter())
    return dict(images_per_s=images_per_second(
        stamps, cfg.train_dataloader.batch_size, warmup),
                iterations=len(stamps),
                peak_mib=peak_mib(device))
