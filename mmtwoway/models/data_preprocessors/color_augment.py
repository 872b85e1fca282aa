"""The paper's photometric augmentation on the whole batch, on the device.

Operations and differences from the authors' pipeline: docs/data_pipeline.md.
"""
from numbers import Number
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.model import stack_batch
from mmpretrain.models import ClsDataPreprocessor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

# Pillow's "L" conversion (ITU-R 601-2 luma), in RGB order.
GREY_WEIGHTS = (0.299, 0.587, 0.114)
# The three ColorJitter operations, in the index order of ``order``.
JITTER_OPS = ('brightness', 'contrast', 'saturation')

FactorRange = Union[Number, Tuple[Number, Number], None]


def factor_range(name: str, value: FactorRange) -> Tuple[float, float]:
    """torchvision's reading of a ColorJitter argument.

    Args:
        name (str): The argument, for messages.
        value (FactorRange):
            ``v`` for ``[max(0, 1 - v), 1 + v]``, a ``(min, max)`` pair,
            or None / 0 for no change.

    Returns:
        tuple: The range ``(lo, hi)`` the factor is drawn from, uniformly.

    Raises:
        ValueError: A negative value or an empty range.
    """
    if value is None:
        return 1., 1.
    if isinstance(value, Number):
        if value < 0:
            raise ValueError(f'color_jitter.{name} must be >= 0, got '
                             f'{value!r}')
        return max(0., 1. - float(value)), 1. + float(value)
    lo, hi = (float(v) for v in value)
    if not 0 <= lo <= hi:
        raise ValueError(f'color_jitter.{name} range must be 0 <= min <= '
                         f'max, got {value!r}')
    return lo, hi


@MODELS.register_module()
class ColorAugmentDataPreprocessor(ClsDataPreprocessor):
    """``ClsDataPreprocessor`` with the paper's colour jitter and PCA
    lighting applied to the training batch on the device.

    In training: uint8 batch -> float RGB -> colour jitter (per image,
    random order) -> lighting -> normalisation. In validation and testing:
    float RGB -> normalisation, exactly as ``ClsDataPreprocessor``. This
    replaces the authors' per-image CPU jitter and lighting (about two
    thirds of their pipeline's CPU time). Parameters are drawn on the CPU
    from a seeded generator and copied in one non-blocking copy: nothing
    waits.

    Args:
        mean (Sequence[Number], optional): Per-channel mean (RGB).
        std (Sequence[Number], optional): Per-channel std (RGB).
        to_rgb (bool): The inputs are BGR (mmcv's order); swap them first.
        color_jitter (dict, optional): ``brightness``, ``contrast``,
            ``saturation``, each as torchvision's ``ColorJitter`` takes it
            (``v`` -> ``[max(0, 1 - v), 1 + v]``, or ``(min, max)``). None:
            no jitter.
        lighting (dict, optional): ``eigval`` (3), ``eigvec`` (3 x 3, one
            row per RGB channel, one column per component) in 0-255 pixel
            units, and ``alphastd``. None: no lighting.
        seed (int, optional): Seed of the parameters; rank ``r`` of a
            distributed run uses ``seed + r``, and batch ``b`` a generator
            seeded with ``(seed + r, b)`` (``b`` is saved in checkpoints,
            so a resumed run continues the sequence). None: drawn from
            torch's global generator when the model is built (which the
            Runner's ``randomness.seed`` fixes).
        **kwargs: The other arguments of ``ClsDataPreprocessor``
            (``num_classes``, ``to_onehot``, ``batch_augments``,
            ``pad_size_divisor``, ``pad_value``).
    """

    def __init__(self,
                 mean: Optional[Sequence[Number]] = None,
                 std: Optional[Sequence[Number]] = None,
                 to_rgb: bool = False,
                 color_jitter: Optional[Dict] = None,
                 lighting: Optional[Dict] = None,
                 seed: Optional[int] = None,
                 **kwargs) -> None:
        # The parent does the labels, padding and batch augments; its pixel
        # work (swap, normalise) is done here, after the augmentation.
        super().__init__(mean=None, std=None, to_rgb=False, **kwargs)
        self._non_blocking = True  # pinned batches copy without a sync
        self.swap_channels = bool(to_rgb)
        self.normalize = mean is not None
        if (mean is None) != (std is None):
            raise ValueError('ColorAugmentDataPreprocessor: give both mean '
                             'and std, or neither')
        if self.normalize:
            self.register_buffer('mean',
                                 torch.tensor(mean, dtype=torch.float32)
                                 .view(-1, 1, 1), False)
            self.register_buffer('std',
                                 torch.tensor(std, dtype=torch.float32)
                                 .view(-1, 1, 1), False)
        self.jitter_ranges = None
        if color_jitter is not None:
            unknown = set(color_jitter) - set(JITTER_OPS)
            if unknown:
                raise ValueError(
                    f'color_jitter: unknown keys {sorted(unknown)}; this '
                    f'preprocessor jitters {JITTER_OPS} (no hue)')
            self.jitter_ranges = torch.tensor(
                [factor_range(op, color_jitter.get(op)) for op in JITTER_OPS],
                dtype=torch.float32)
        self.alphastd = 0.
        if lighting is not None:
            lighting = dict(lighting)
            missing = {'eigval', 'eigvec'} - set(lighting)
            if missing:
                raise ValueError(f'lighting: {sorted(missing)} missing; '
                                 'expected eigval, eigvec, alphastd')
            self.alphastd = float(lighting.pop('alphastd', 0.1))
            eigval = torch.tensor(lighting.pop('eigval'), dtype=torch.float32)
            eigvec = torch.tensor(lighting.pop('eigvec'), dtype=torch.float32)
            if lighting:
                raise ValueError(f'lighting: unknown keys {sorted(lighting)}'
                                 '; expected eigval, eigvec, alphastd')
            if eigval.shape != (3, ) or eigvec.shape != (3, 3):
                raise ValueError('lighting: eigval must have 3 values and '
                                 f'eigvec 3 x 3, got {tuple(eigval.shape)} '
                                 f'and {tuple(eigvec.shape)}')
            if self.alphastd < 0:
                raise ValueError(f'lighting.alphastd must be >= 0, got '
                                 f'{self.alphastd}')
            # noise = eigvec @ (alpha * eigval) = alpha @ (eigvec * eigval).T
            self.register_buffer('lighting_basis', (eigvec * eigval).t(),
                                 False)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1, )).item())
        self.seed = int(seed) + get_rank()
        # Batch b draws from a generator seeded with (seed, b): the count
        # is saved in checkpoints, so a resumed run continues the same
        # sequence on every rank.
        self.batches = 0

    @property
    def augments(self) -> bool:
        """Whether training batches are jittered or lit."""
        return self.jitter_ranges is not None or self.alphastd > 0

    def draw(self, num: int) -> Dict[str, torch.Tensor]:
        """Per-image parameters for ``num`` images, drawn on the CPU.

        Returns:
            dict: ``order`` (num x 3, a permutation of 0 = brightness,
            1 = contrast, 2 = saturation per image), ``factors`` (num x 3,
            in that index order) and ``alpha`` (num x 3), all CPU tensors.
        """
        # numpy's SeedSequence mixes (seed, batch) into independent seeds.
        mixed = np.random.SeedSequence(
            [self.seed % 2**64, self.batches]).generate_state(1, np.uint64)
        g = torch.Generator().manual_seed(int(mixed[0]) >> 1)
        self.batches += 1
        params = {}
        if self.jitter_ranges is not None:
            # torchvision's randperm of the operations, per image.
            params['order'] = torch.rand(num, 3, generator=g).argsort(1)
            lo, hi = self.jitter_ranges[:, 0], self.jitter_ranges[:, 1]
            params['factors'] = lo + (hi - lo) * torch.rand(num, 3,
                                                            generator=g)
        if self.alphastd > 0:
            params['alpha'] = torch.randn(num, 3, generator=g) * self.alphastd
        return params

    def get_extra_state(self) -> dict:
        """Saved in the state dict: the number of batches drawn."""
        return dict(batches=self.batches)

    def set_extra_state(self, state: dict) -> None:
        """Continue the parameter sequence of a checkpoint."""
        self.batches = int(state['batches'])

    def to_device(self, params: Dict[str, torch.Tensor]
                  ) -> Dict[str, torch.Tensor]:
        """The parameters on the device: one (pinned, non-blocking) copy."""
        if not params:
            return params
        names = list(params)
        flat = torch.cat([params[n].float() for n in names], 1)
        if self.device.type == 'cuda' and torch.cuda.is_available():
            flat = flat.pin_memory()
        flat = flat.to(self.device, non_blocking=True)
        out = dict(zip(names, flat.split(3, 1)))
        if 'order' in out:
            out['order'] = out['order'].long()
        return out

    def labels_to_device(self, data_samples: Optional[Sequence]) -> None:
        """Put the samples' ``gt_label`` / ``gt_score`` on the device.

        One copy per field for the whole batch, from pinned memory and
        ``non_blocking``, so the host queues on without waiting for the GPU
        (the parent's ``batch_label.to(device)`` is a blocking copy). The
        parent then finds the labels on the device and copies nothing.

        Args:
            data_samples (Sequence[DataSample], optional): The batch's
                samples; changed in place.
        """
        if self.device.type == 'cpu' or not data_samples or \
                not isinstance(data_samples[0], DataSample):
            return
        for key in ('gt_label', 'gt_score'):
            values = [sample.get(key) for sample in data_samples]
            if not all(isinstance(v, torch.Tensor) and v.device.type == 'cpu'
                       for v in values):
                continue
            flat = torch.cat([v.reshape(-1) for v in values])
            if self.device.type == 'cuda' and torch.cuda.is_available():
                flat = flat.pin_memory()
            flat = flat.to(self.device, non_blocking=True)
            parts = flat.split([v.numel() for v in values])
            for sample, value, part in zip(data_samples, values, parts):
                sample.set_field(part.view(value.shape), key,
                                 dtype=torch.Tensor)

    def color_augment(self,
                      x: torch.Tensor,
                      params: Dict[str, torch.Tensor],
                      inplace: bool = False) -> torch.Tensor:
        """Jitter and light a float RGB batch in [0, 255].

        Each jitter step is ``clip(f * x + (1 - f) * degenerate, 0, 255)``
        with degenerate black (brightness), ``mean(grey(x))`` (contrast) or
        ``grey(x)`` (saturation), ``grey`` as Pillow's ``L``. Lighting adds
        ``eigvec @ (alpha * eigval)``, unclipped, as the authors' float code.

        Args:
            x (torch.Tensor): ``N x 3 x H x W`` float, RGB, 0-255.
            params (dict): :meth:`draw`'s parameters, on ``x``'s device.
            inplace (bool): Overwrite ``x`` (saves a copy of the batch).

        Returns:
            torch.Tensor: The augmented batch (lighting is not clipped).
        """
        n = x.size(0)
        if not inplace:
            x = x.clone()
        if 'order' in params:
            order, factors = params['order'], params['factors']
            w = GREY_WEIGHTS
            for step in range(3):
                op = order[:, step]
                f = factors.gather(1, op[:, None]).view(n, 1, 1, 1)
                grey = x[:, :1] * w[0]
                grey.add_(x[:, 1:2], alpha=w[1]).add_(x[:, 2:3], alpha=w[2])
                mean = grey.mean((2, 3), keepdim=True)
                # The degenerate image: black, the grey mean, or grey;
                # x <- clip(f * x + (1 - f) * degenerate), in place.
                degenerate = torch.where(
                    (op == 2).view(n, 1, 1, 1), grey,
                    mean * (op == 1).view(n, 1, 1, 1))
                torch.addcmul(degenerate.mul_(1 - f), x, f, out=x)
                x.clamp_(0, 255)
        if 'alpha' in params:
            noise = params['alpha'] @ self.lighting_basis
            x.add_(noise.view(n, 3, 1, 1))
        return x

    def float_rgb(self, data: dict) -> torch.Tensor:
        """The batch on the device as float RGB pixels (``N x 3 x H x W``)."""
        inputs = self.cast_data(data['inputs'])
        if not isinstance(inputs, torch.Tensor):
            inputs = stack_batch(list(inputs), self.pad_size_divisor,
                                 self.pad_value)
        if self.swap_channels and inputs.size(1) == 3:
            inputs = inputs.flip(1)
        return inputs.float()

    def forward(self, data: dict, training: bool = False) -> dict:
        """Augment (training), normalise, then the parent's label work.

        Args:
            data (dict): ``inputs`` (uint8 batch or list) and
                ``data_samples`` from the dataloader.
            training (bool): Apply the colour augmentation.

        Returns:
            dict: ``inputs`` (normalised float batch on the device) and
            ``data_samples``.
        """
        x = self.float_rgb(data)
        if training and self.augments:
            # float_rgb's result is this call's own unless the batch came
            # as float already.
            inplace = not isinstance(data['inputs'], torch.Tensor) or \
                data['inputs'].dtype != torch.float32
            x = self.color_augment(x, self.to_device(self.draw(x.size(0))),
                                   inplace)
        if self.normalize:
            x = (x - self.mean).div_(self.std)
        self.labels_to_device(data.get('data_samples'))
        return super().forward(dict(data, inputs=x), training)
