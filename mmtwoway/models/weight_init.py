"""``TorchDefault``: PyTorch's own initialisation of a layer (an init_cfg)."""
import torch.nn as nn
from mmengine.model.weight_init import BaseInit, update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS


@WEIGHT_INITIALIZERS.register_module(name='TorchDefault')
class TorchDefaultInit(BaseInit):
    """Re-run PyTorch's default initialisation of the given layers.

    The authors' script replaces the network's last ``nn.Linear`` with a fresh
    ``nn.Linear(in_features, C)`` and trains it as it comes out of the
    constructor: weights Kaiming-uniform with ``a = sqrt(5)``, i.e. uniform in
    ``(-1/sqrt(fan_in), 1/sqrt(fan_in))``, and the bias uniform in the same
    range. mmengine's initialisers cannot express that (their bias is a
    constant), and mmpretrain's heads default to Normal(std 0.01) weights and a
    zero bias. ``TorchDefault`` calls the matching layers' own
    ``reset_parameters()``, so it is PyTorch's default init by construction,
    for whichever layer type and PyTorch version.

        head=dict(type='TwoWayLinearClsHead', ...,
                  init_cfg=dict(type='TorchDefault', layer='Linear'))

    The class is registered in mmengine's root ``WEIGHT_INITIALIZERS``, not in
    mmpretrain's child registry: mmengine looks initialisers up in the root
    registry, which reaches a child registry only while a default scope is set
    (inside a Runner); a model built and initialised outside one (a script,
    ``tools/benchmark/gpu_check.py``) would otherwise not find it. Children
    find it through their parent either way.

    Args:
        layer (str | list[str], optional): layer class names (or names of
            their bases), e.g. ``'Linear'``. As with mmengine's
            initialisers, no layer is touched without it, unless the init is
            an ``override`` of a named submodule (then that whole module).
        **kwargs: ``BaseInit``'s other arguments; ``bias`` and
            ``bias_prob`` are refused because the bias follows PyTorch's
            default too.

    Raises:
        ValueError: if ``bias`` or ``bias_prob`` is given.
    """

    def __init__(self, **kwargs) -> None:
        for key in ('bias', 'bias_prob'):
            if key in kwargs:
                raise ValueError(
                    f'TorchDefault takes no {key!r}: the bias is '
                    'initialised as PyTorch does (uniform in +-1/sqrt('
                    'fan_in) for nn.Linear). Use another init_cfg for a '
                    'constant bias.')
        super().__init__(**kwargs)

    def _matches(self, module: nn.Module) -> bool:
        if self.wholemodule:
            return True
        names = {type(module).__name__}
        names.update(base.__name__ for base in type(module).__mro__)
        return bool(names & set(self.layer))

    def __call__(self, module: nn.Module) -> None:
        """Reset the parameters of every matching layer under ``module``."""

        def init(m: nn.Module) -> None:
            reset = getattr(m, 'reset_parameters', None)
            if callable(reset) and self._matches(m):
                reset()

        module.apply(init)
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())

    def _get_init_info(self) -> str:
        return (f'{type(self).__name__}: PyTorch default (reset_parameters)'
                f' of {self.layer or "every layer"}')
