"""Linear multi-label head for the two-way loss."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmpretrain.models.heads import MultiLabelLinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmtwoway.evaluation.decision import Decision
from mmtwoway.structures import build_target
from ..losses.utils import autocast_off


@MODELS.register_module()
class TwoWayLinearClsHead(MultiLabelLinearClsHead):
    """Linear multi-label head whose default loss is ``TwoWayLoss``.

    Targets come from :func:`mmtwoway.structures.build_target`, so ignored
    labels (``gt_score`` entries of -1) reach the loss as ignored. The
    target matrix is built on the logits' device for the whole batch, and
    the loss runs in float32 outside autocast, whatever the loss module:
    no host sync, no CPU/GPU mix, no half-precision log or power.

    Predictions: the two-way loss compares logits with each other and is
    invariant to adding a constant to all of them, so the logits have no
    zero point and ``sigmoid(logit) > 0.5`` means nothing. ``pred_score``
    therefore holds the raw logits: a ranking score, which is all mAP needs
    (a sigmoid would only saturate large logits into ties). ``pred_label``
    holds the labels of the head's :class:`~mmtwoway.structures.Decision`:
    the rule of a ``calibration`` file written by ``tools/calibrate.py``
    (per-class thresholds or "within delta of the top score"), else the
    classes whose logit reaches ``thr`` (a float, or one per class), else
    the ``topk`` highest-scoring classes. Every predicted data sample
    carries the metainfo ``decision`` (a line saying which rule decided,
    "uncalibrated" for top-k) and, with a calibration file, the file's
    class names as ``decision_classes``, so that a metric or tool that
    knows the dataset's classes can refuse a file fitted for other ones.

    Args:
        num_classes (int): number of classes C.
        in_channels (int): number of input feature channels.
        loss (dict): loss config. Defaults to ``TwoWayLoss(tp=4, tn=1)``.
        topk (int): classes predicted per image when neither ``thr`` nor
            ``calibration`` is given. Defaults to 1.
        thr (float | Sequence[float], optional): logit threshold(s).
        calibration (str, optional): a calibration JSON file written by
            ``tools/calibrate.py``; its class count must be C.
        init_cfg (dict, optional): weight initialisation config. Defaults
            to mmpretrain's Normal(std 0.01) weights and zero bias; the
            paper's configs (``configs/_base_/models/*.py``) set
            ``dict(type='TorchDefault', layer='Linear')``, PyTorch's default
            ``nn.Linear`` init as in the authors' script
            (:mod:`mmtwoway.models.weight_init`).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 loss: Dict = dict(type='TwoWayLoss', tp=4.0, tn=1.0),
                 topk: Optional[int] = 1,
                 thr: Optional[Union[float, Sequence[float]]] = None,
                 calibration: Optional[str] = None,
                 init_cfg: Optional[dict] = dict(
                     type='Normal', layer='Linear', std=0.01)) -> None:
        if thr is None and calibration is None and not topk:
            raise ValueError('TwoWayLinearClsHead needs topk >= 1, thr or a '
                             'calibration file: two-way logits have no zero '
                             'point to threshold by default.')
        if thr is not None and calibration is not None:
            raise ValueError('TwoWayLinearClsHead takes thr or calibration, '
                             f'not both (got thr={thr!r} and calibration='
                             f'{calibration!r}).')
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            loss=loss,
            thr=None,
            topk=topk if thr is None else None,
            init_cfg=init_cfg)
        if thr is not None and not isinstance(thr, (int, float)):
            if len(thr) != num_classes:
                raise ValueError(f'thr has {len(thr)} values but the head has '
                                 f'{num_classes} classes.')
        if calibration is not None:
            self.decision = Decision.from_file(calibration, num_classes)
        elif thr is not None:
            self.decision = Decision('thresholds', thresholds=thr)
        else:
            self.decision = Decision('topk', k=topk)
        self._decision_meta = dict(decision=self.decision.describe())
        if self.decision.classes is not None:
            self._decision_meta['decision_classes'] = self.decision.classes

    def _get_loss(self, cls_score: torch.Tensor,
                  data_samples: List[DataSample], **kwargs) -> dict:
        """Build the (N, C) target with ignored entries and call the loss.

        Args:
            cls_score (torch.Tensor): ``(N, C)`` logits.
            data_samples (List[DataSample]): The batch's samples, with
                ``gt_label`` or ``gt_score`` on any device.

        Returns:
            dict: ``{'loss': loss}``.
        """
        target = build_target(data_samples, cls_score.size(-1),
                              cls_score.device)
        # float32 outside autocast: under fp16, eps = 1e-8 rounds to 0 and
        # log / pow of probabilities near 0 or 1 overflow in any loss.
        with autocast_off(cls_score.device):
            loss = self.loss_module(
                cls_score.float(), target, avg_factor=cls_score.size(0),
                **kwargs)
        return dict(loss=loss)

    def _get_predictions(self, cls_score: torch.Tensor,
                         data_samples: Optional[List[DataSample]]
                         ) -> List[DataSample]:
        """Store raw logits as ``pred_score`` and the decided labels.

        The decision runs on the logits' device for the whole batch; its
        mask goes to the CPU in one copy, where every sample's label
        indices are read (one sync per batch rather than one per sample).
        """
        scores = cls_score.detach().float()
        if data_samples is None:
            data_samples = [DataSample() for _ in range(scores.size(0))]
        decided = self.decision(scores).cpu()
        _, cols = decided.nonzero(as_tuple=True)
        labels = cols.split(decided.sum(1).tolist())
        for sample, score, label in zip(data_samples, scores, labels):
            sample.set_pred_score(score).set_pred_label(label)
            sample.set_metainfo(self._decision_meta)
        return data_samples
