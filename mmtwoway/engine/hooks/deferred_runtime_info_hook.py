"""Log the losses without waiting for the GPU at every iteration."""
from collections import defaultdict
from typing import Any, Dict, List, Optional, Tuple

import torch
from mmengine.hooks import LoggerHook, RuntimeInfoHook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class DeferredRuntimeInfoHook(RuntimeInfoHook):
    """``RuntimeInfoHook`` that reads the losses only when they are logged.

    mmengine's ``RuntimeInfoHook`` hands every iteration's losses to the
    message hub, which calls ``.item()`` on each: a host sync per loss and
    iteration, which stops the CPU from queuing the next step while the GPU
    works. This hook keeps the iteration's loss tensors (detached, on their
    device) and hands them to the message hub in one copy per dtype when
    they are needed: at the ``LoggerHook``'s interval, at the end of an
    epoch, before a checkpoint is saved and at the end of training. The
    message hub then receives the same values in the same order, so the
    log lines, their smoothing window and the checkpointed history are
    exactly those of ``RuntimeInfoHook``.

    Use it in place of the default (``configs/_base_/default_runtime.py``
    does)::

        default_hooks = dict(runtime_info=dict(type='DeferredRuntimeInfoHook'))

    Args:
        interval (int, optional): Read the losses every ``interval``
            iterations. By default, the interval of the runner's
            ``LoggerHook`` (and only at the end of epochs without one).
    """

    def __init__(self, interval: Optional[int] = None) -> None:
        if interval is not None and (isinstance(interval, bool)
                                     or not isinstance(interval, int)
                                     or interval < 1):
            raise ValueError('DeferredRuntimeInfoHook: interval must be a '
                             f'positive integer or None, got {interval!r}')
        self.interval = interval
        self._pending: List[Tuple[str, Any]] = []

    def before_train(self, runner) -> None:
        """Take the logging interval from the runner's ``LoggerHook``."""
        super().before_train(runner)
        if self.interval is None:
            loggers = [h for h in runner.hooks if isinstance(h, LoggerHook)]
            self.interval = loggers[0].interval if loggers else 0
        self._pending = []

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Optional[Dict[str, Any]] = None) -> None:
        """Keep the iteration's losses; flush them when they are logged."""
        for key, value in (outputs or {}).items():
            if isinstance(value, torch.Tensor):
                value = value.detach()
            self._pending.append((f'train/{key}', value))
        if self._due(runner, batch_idx):
            self.flush(runner)

    def _due(self, runner, batch_idx: int) -> bool:
        """Whether a logger may read the message hub after this iteration.

        The same tests as ``LoggerHook.after_train_iter``: the interval
        counted within the epoch and over the run, and the epoch's end.
        """
        if self.end_of_epoch(runner.train_dataloader, batch_idx):
            return True
        return bool(self.interval) and (
            self.every_n_inner_iters(batch_idx, self.interval)
            or self.every_n_train_iters(runner, self.interval))

    def flush(self, runner) -> None:
        """Hand the kept values to the message hub, in their order.

        The tensors are copied to the host in one batch per device and
        dtype (one wait for the GPU instead of one per value); their
        values are exactly those ``.item()`` would give.
        """
        if not self._pending:
            return
        groups = defaultdict(list)
        for i, (_, value) in enumerate(self._pending):
            if isinstance(value, torch.Tensor):
                groups[(value.device, value.dtype)].append(i)
        values = [value for _, value in self._pending]
        for indices in groups.values():
            stacked = torch.stack([values[i].reshape(()) for i in indices])
            # One copy to the host for the group.
            for i, number in zip(indices, stacked.cpu().tolist()):
                values[i] = number
        for (key, _), value in zip(self._pending, values):
            runner.message_hub.update_scalar(key, value)
        self._pending = []

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Flush first: the checkpoint stores the message hub's history."""
        self.flush(runner)

    def after_train_epoch(self, runner) -> None:
        self.flush(runner)

    def after_train(self, runner) -> None:
        self.flush(runner)
