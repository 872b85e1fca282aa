"""Stop a training run whose loss becomes non-finite, before NaN is learnt.

CPU, GPU and AMP behaviour: docs/bad_input.md and docs/gpu.md.
"""
import logging
from collections import deque
from typing import Any, Deque, Dict, List, NamedTuple, Optional, Sequence

import torch
from mmengine.hooks import Hook, LoggerHook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import HOOKS

from mmtwoway.structures import describe_sample
from mmtwoway.utils.misc import listing

_DEFAULT_INTERVAL = 50
_MAX_LISTED = 8


class NonFiniteLossError(RuntimeError):
    """The training loss (or a gradient) became NaN or infinite."""


class _Iteration(NamedTuple):
    """Where a training iteration is, and the samples of its batch."""

    iter: int  # global, 0-based
    epoch: int  # 0-based
    batch_idx: int  # 0-based, within the epoch
    samples: Optional[Sequence[Any]]


def _nan_target_samples(samples: Optional[Sequence[Any]]) -> List[str]:
    """The samples of a batch whose ``gt_score`` holds NaN, named."""
    named = []
    for sample in samples or ():
        score = sample.get('gt_score') if hasattr(sample, 'get') else None
        if isinstance(score, torch.Tensor) and score.is_floating_point() \
                and bool(torch.isnan(score).any()):
            named.append(describe_sample(sample))
    return named


def _grads(optimizer: torch.optim.Optimizer) -> List[torch.Tensor]:
    """The gradients an optimiser step would apply."""
    return [
        p.grad for group in optimizer.param_groups for p in group['params']
        if p.grad is not None
    ]


def _inf_norm(tensors: List[torch.Tensor]) -> torch.Tensor:
    """max |g| over all ``tensors`` (NaN if any is NaN), on the device."""
    get_total_norm = getattr(torch.nn.utils, 'get_total_norm', None)
    if get_total_norm is not None:  # torch >= 2.6: one foreach kernel
        return get_total_norm(tensors, float('inf'))
    return torch.stack([
        torch.linalg.vector_norm(t, float('inf')).to(tensors[0].device)
        for t in tensors
    ]).amax()


def _enabled_scaler(wrapper: Any) -> Optional[Any]:
    """The wrapper's loss scaler if it scales (skips bad steps), else None.

    ``--bf16`` builds ``AmpOptimWrapper`` with a disabled ``GradScaler``,
    whose ``step`` calls the optimiser whatever the gradients hold.
    """
    scaler = getattr(wrapper, 'loss_scaler', None)
    if scaler is None:
        return None
    is_enabled = getattr(scaler, 'is_enabled', None)
    if callable(is_enabled) and not is_enabled():
        return None
    return scaler


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training when the loss or a gradient becomes NaN or infinite.

    ``tools/train.py`` adds this hook to every run; add it to a config with
    ``custom_hooks = [dict(type='NonFiniteLossHook')]`` when training with
    another entry point.

    On the CPU the run stops before ``backward`` / ``step``. On a GPU
    nothing waits: a device-side flag records the first bad iteration, a
    non-finite gradient is zeroed before the step (unless an enabled fp16
    scaler skips it), and the flag is read every ``interval`` iterations,
    at each epoch end and before each checkpoint. The stopped run saves no
    checkpoint, as BatchNorm statistics may already hold the bad batch.

    Args:
        interval (int, optional):
            On a GPU, read the device-side flags every ``interval``
            iterations (also at the end of every epoch and before every
            checkpoint). ``None``: the ``LoggerHook``'s interval.
        sync_free (bool, optional):
            Keep the checks on the device between reads. ``None``
            (default): when the loss lives on a GPU. ``False`` checks every
            iteration on the host (what happens on the CPU anyway).

    Raises:
        NonFiniteLossError: From the training loop, naming the epoch and
            iteration of the first non-finite loss or gradient, and the
            samples of that batch whose targets are NaN.
    """

    # Before LoggerHook (BELOW_NORMAL) and CheckpointHook (VERY_LOW): a run
    # that is stopped neither logs nor saves the bad iteration.
    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 interval: Optional[int] = None,
                 sync_free: Optional[bool] = None) -> None:
        if interval is not None and (isinstance(interval, bool)
                                     or not isinstance(interval, int)
                                     or interval < 1):
            raise ValueError('NonFiniteLossHook: interval must be None or a '
                             f'positive int, got {interval!r}')
        self.interval = interval
        self.sync_free = sync_free
        self._handles: List[Any] = []
        self._current: Optional[_Iteration] = None
        self._recent: Deque[_Iteration] = deque(maxlen=_DEFAULT_INTERVAL)
        self._first_bad: Dict[str, torch.Tensor] = {}
        self._scalers: List[Any] = []
        self._scales: Dict[int, torch.Tensor] = {}
        self._skips: Optional[torch.Tensor] = None
        self._first_skip: Optional[torch.Tensor] = None
        self._deferred = False
        self._unscaled_amp = False

    # ------------------------------------------------------------ set-up

    def before_train(self, runner) -> None:
        """Watch the model's losses and the optimisers' steps."""
        self._runner = runner
        interval = self.interval
        if interval is None:
            loggers = [h for h in runner.hooks if isinstance(h, LoggerHook)]
            interval = loggers[0].interval if loggers else _DEFAULT_INTERVAL
        self._interval = interval
        self._recent = deque(maxlen=interval)
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._handles = [model.register_forward_hook(self._after_forward)]
        wrapper = runner.optim_wrapper
        wrappers = (
            list(wrapper.optim_wrappers.values()) if isinstance(
                wrapper, OptimWrapperDict) else [wrapper])
        self._scalers = []
        # AMP wrappers whose scaler is disabled (--bf16), for the message.
        self._unscaled_amp = any(
            getattr(w, 'loss_scaler', None) is not None
            and _enabled_scaler(w) is None for w in wrappers)
        for each in wrappers:
            scaler = _enabled_scaler(each)
            if scaler is not None:
                # fp16 AMP: the scaler skips steps with non-finite gradients.
                self._scalers.append(scaler)
            else:
                # float32, or bf16 with a disabled scaler (which steps the
                # optimiser whatever the gradients hold): the guard.
                self._handles.append(
                    each.optimizer.register_step_pre_hook(self._before_step))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Let a checkpoint of the other precision resume.

        Runs before the Runner loads ``checkpoint['optimizer']``. A
        ``--bf16`` checkpoint holds its disabled scaler's state ``{}``,
        which ``GradScaler.load_state_dict`` of an enabled (fp16) scaler
        rejects; it is removed, and the fp16 scale starts again from its
        initial value. (An fp16 scaler state is ignored by a disabled
        scaler, and by a plain ``OptimWrapper``'s optimiser.)
        """
        state = checkpoint.get('optimizer') if isinstance(checkpoint,
                                                          dict) else None
        wrapper = getattr(runner, 'optim_wrapper', None)
        if not isinstance(state, dict) or wrapper is None:
            return
        if isinstance(wrapper, OptimWrapperDict):
            pairs = [(state.get(k), w)
                     for k, w in wrapper.optim_wrappers.items()]
        elif isinstance(wrapper, dict):  # the Runner builds it later
            return
        else:
            pairs = [(state, wrapper)]
        for each_state, each in pairs:
            if not isinstance(each_state, dict) or \
                    each_state.get('loss_scaler', None) != {}:
                continue
            scaler = _enabled_scaler(each)
            if scaler is None:
                continue
            del each_state['loss_scaler']
            print_log(
                'NonFiniteLossHook: the checkpoint was trained without a '
                'loss scaler (--bf16); resuming with fp16 loss scaling from '
                f'the initial scale {scaler.get_scale():g}.',
                logger='current', level=logging.WARNING)

    def after_train(self, runner) -> None:
        """Read the flags a last time and remove the model hooks."""
        try:
            self._read_flags()
        finally:
            for handle in self._handles:
                handle.remove()
            self._handles = []

    # --------------------------------------------------------- iteration

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        samples = data_batch.get('data_samples') if isinstance(
            data_batch, dict) else None
        self._current = _Iteration(runner.iter, runner.epoch, batch_idx,
                                   samples)
        self._recent.append(self._current)
        for scaler in self._scalers:
            scale = getattr(scaler, '_scale', None)
            if isinstance(scale, torch.Tensor):
                self._scales[id(scaler)] = scale.detach().clone()

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        self._count_scaler_skips()
        self._current = None
        if (runner.iter + 1) % self._interval == 0:
            self._read_flags()

    def after_train_epoch(self, runner) -> None:
        self._read_flags()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self._read_flags()

    # ----------------------------------------------------------- checks

    def _sync_free(self, tensor: torch.Tensor) -> bool:
        if self.sync_free is not None:
            return self.sync_free
        return tensor.device.type != 'cpu'

    def _after_forward(self, module, args, output) -> None:
        """Check the losses of a training forward pass (``mode='loss'``)."""
        if self._current is None or not isinstance(output, dict):
            return
        values = []
        for key, value in output.items():
            if 'loss' not in key:
                continue
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, torch.Tensor):
                    values.append(torch.isfinite(item.detach()).all())
        if not values:
            return
        finite = torch.stack(values).all()
        if not self._sync_free(finite):
            if not bool(finite):
                raise self._error('loss', self._current, output)
            return
        self._flag('loss', ~finite)

    def _before_step(self, optimizer, args, kwargs) -> None:
        """Keep a non-finite gradient out of the weights."""
        grads = _grads(optimizer)
        if not grads or self._current is None:
            return
        finite = torch.isfinite(_inf_norm(grads))
        if not self._sync_free(finite):
            if not bool(finite):
                raise self._error('gradient', self._current)
            return
        self._flag('gradient', ~finite)
        # Zero this step's gradients if any is non-finite, on the device.
        bad = ~finite
        for grad in grads:
            grad.masked_fill_(bad.to(grad.device, non_blocking=True), 0.)

    def _flag(self, kind: str, bad: torch.Tensor) -> None:
        """Record the first iteration where ``bad`` is true, on the device."""
        self._deferred = True
        first = self._first_bad.get(kind)
        if first is None:
            first = torch.full((), -1, dtype=torch.long, device=bad.device)
        self._first_bad[kind] = torch.where(bad & (first < 0),
                                            self._current.iter, first)

    def _count_scaler_skips(self) -> None:
        """Count the steps the AMP scaler skipped (its scale went down)."""
        for scaler in self._scalers:
            before = self._scales.pop(id(scaler), None)
            after = getattr(scaler, '_scale', None)
            if not isinstance(after, torch.Tensor):
                continue
            if before is None:  # the scale tensor is made by the first step
                before = getattr(scaler, '_init_scale', None)
                if before is None:
                    continue
            skipped = (after < before).long()
            if self._skips is None:
                self._skips = torch.zeros_like(skipped)
                self._first_skip = torch.full_like(skipped, -1)
            self._first_skip = torch.where(
                (skipped > 0) & (self._first_skip < 0), self._current.iter,
                self._first_skip)
            self._skips = self._skips + skipped

    def _read_flags(self) -> None:
        """Read the device flags (one sync); stop if one is set."""
        if self._skips is not None:
            skips, first = int(self._skips), int(self._first_skip)
            if skips:
                scales = ', '.join(f'{s.get_scale():g}'
                                   for s in self._scalers)
                print_log(
                    f'NonFiniteLossHook: the AMP loss scaler skipped {skips} '
                    f'optimiser step(s) with non-finite gradients (the '
                    f'first at {self._describe(self._find(first))}); the '
                    'weights were not changed by them. Loss scale now '
                    f'{scales}. This is normal at the start of AMP training.',
                    logger='current', level=logging.WARNING)
            self._skips = self._first_skip = None
        for kind in ('loss', 'gradient'):
            flag = self._first_bad.get(kind)
            if flag is not None and int(flag) >= 0:
                raise self._error(kind, self._find(int(flag)))
        self._first_bad = {}

    def _find(self, it: int) -> _Iteration:
        """The record of global iteration ``it`` (kept since the last read)."""
        for record in self._recent:
            if record.iter == it:
                return record
        return _Iteration(it, -1, -1, None)

    def _describe(self, record: _Iteration) -> str:
        """``epoch E, iteration I/N (global iteration G)``, 1-based."""
        loop = getattr(self._runner, 'train_loop', None)
        if isinstance(loop, EpochBasedTrainLoop) and record.epoch >= 0:
            return (f'epoch {record.epoch + 1}, iteration '
                    f'{record.batch_idx + 1}/{len(loop.dataloader)} (global '
                    f'iteration {record.iter + 1})')
        return f'iteration {record.iter + 1}'

    def _error(self,
               kind: str,
               record: _Iteration,
               losses: Optional[dict] = None) -> NonFiniteLossError:
        """The error that stops the run, with what is known of the cause."""
        if kind == 'loss':
            values = ''
            if losses is not None:
                values = ' (' + ', '.join(
                    f'{k}={float(v.detach().float().sum()):g}'
                    for k, v in losses.items()
                    if 'loss' in k and isinstance(v, torch.Tensor)) + ')'
            what = f'the training loss became non-finite{values}'
        else:
            what = ('a gradient became non-finite while the loss was '
                    'finite')
        message = (f'NonFiniteLossHook: {what} at '
                   f'{self._describe(record)}. ')
        nan_targets = _nan_target_samples(record.samples)
        if nan_targets:
            message += (
                f'These samples of that batch have NaN targets (gt_score): '
                f'{listing(nan_targets, _MAX_LISTED)}. A target must be > 0 '
                '(positive), 0 (negative) or < 0 (ignored, e.g. -1): fix the '
                'annotations. ')
        else:
            message += (
                'No target of that batch is NaN, so the logits or gradients '
                'overflowed: lower the learning rate (or warm it up), clip '
                'gradients (optim_wrapper.clip_grad) and check the input '
                'images. ')
        if self._scalers:
            message += ('The AMP loss scaler kept that step out of the '
                        'weights. ')
        elif self._deferred:
            unscaled = (' (mixed precision without a loss scaler, e.g. '
                        '--bf16: nothing else skips such steps)'
                        if self._unscaled_amp else '')
            message += ('No non-finite value reached the weights: steps '
                        'with a non-finite gradient had it zeroed by this '
                        f'hook{unscaled}. ')
        else:
            message += ('Training stopped before the optimiser step, so the '
                        'weights hold no non-finite value. ')
        return NonFiniteLossError(message + 'Fix the cause, then resume '
                                  'from the last checkpoint (--resume).')
