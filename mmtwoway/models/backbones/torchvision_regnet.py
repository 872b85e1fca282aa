"""torchvision's RegNet (RegNetY-32GF and others) as an mmpretrain backbone."""
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn
import torchvision
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm


def torchvision_regnet_archs() -> Tuple[str, ...]:
    """Names of the RegNet builders this torchvision offers."""
    return tuple(
        name for name in torchvision.models.list_models(torchvision.models)
        if name.startswith('regnet_'))


@MODELS.register_module()
class TorchvisionRegNet(BaseBackbone):
    """A torchvision RegNet trunk returning a tuple of stage outputs.

    mmpretrain's ``RegNet`` implements RegNetX only; the paper's fourth CNN is
    RegNetY-32GF, whose blocks add squeeze-and-excitation. Rather than
    re-implement it, we wrap torchvision's network so that the ImageNet weights
    torchvision publishes load without any renaming.

    The submodules keep torchvision's names (``stem``, ``trunk_output``), so
    torchvision checkpoints map onto ``backbone.<their key>``; the
    classifier (``fc``) and pooling are left to the neck and head, as in any
    mmpretrain backbone. ``regnet_y_32gf`` ends with 3712 channels.

    Args:
        arch (str): a torchvision RegNet builder name, such as
            ``'regnet_y_32gf'`` (the paper's) or ``'regnet_y_400mf'``.
            Defaults to ``'regnet_y_32gf'``.
        out_indices (Sequence[int] | int): the stages (0-3) whose outputs
            are returned. Defaults to ``(3, )``, the last one.
        frozen_stages (int): freeze the stem (0) and the first
            ``frozen_stages`` stages: no gradients, batch norms in eval
            mode. -1 (default) freezes nothing.
        norm_eval (bool): keep every batch norm in eval mode while
            training (frozen running statistics). Defaults to False.
        init_cfg (dict | list[dict], optional): mmengine initialisation,
            e.g. ``dict(type='Pretrained', prefix='backbone',
            checkpoint='from-torchvision://<torchvision .pth URL or path>')``.
            Without one the network keeps torchvision's random
            initialisation.
    """

    def __init__(self,
                 arch: str = 'regnet_y_32gf',
                 out_indices: Union[int, Sequence[int]] = (3, ),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        archs = torchvision_regnet_archs()
        if arch not in archs:
            raise ValueError(f'TorchvisionRegNet: unknown arch {arch!r}; '
                             f'torchvision {torchvision.__version__} offers '
                             f'{", ".join(archs)}.')
        # weights=None: pretrained weights come through init_cfg, so that
        # offline users can point at a local file like for any backbone.
        net = getattr(torchvision.models, arch)(weights=None)
        self.arch = arch
        self.stem = net.stem
        self.trunk_output = net.trunk_output
        num_stages = len(self.trunk_output)
        # The last batch norm of a stage normalises that stage's output.
        self.out_channels = tuple(
            [m for m in stage.modules()
             if isinstance(m, nn.BatchNorm2d)][-1].num_features
            for stage in self.trunk_output)

        if isinstance(out_indices, int):
            out_indices = [out_indices]
        indices = []
        for index in out_indices:
            resolved = index + num_stages if index < 0 else index
            if not 0 <= resolved < num_stages:
                raise ValueError(f'TorchvisionRegNet: out_indices entry '
                                 f'{index} is outside the {num_stages} '
                                 'stages.')
            indices.append(resolved)
        self.out_indices = tuple(indices)
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'TorchvisionRegNet: frozen_stages must be in '
                             f'[-1, {num_stages}], got {frozen_stages}.')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self._freeze_stages()

    def _frozen_modules(self):
        """The stem and the first ``frozen_stages`` stages."""
        if self.frozen_stages < 0:
            return []
        return [self.stem] + list(self.trunk_output)[:self.frozen_stages]

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Feature maps of the stages in ``out_indices``."""
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.trunk_output):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'TorchvisionRegNet':
        """Switch mode, keeping frozen stages (and norms if asked) in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
