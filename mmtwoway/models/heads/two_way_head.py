"""Linear multi-label head for the two-way loss."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmpretrain.models.heads import MultiLabelLinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmtwoway.evaluation.calibration import Decision


def build_target(data_samples: Sequence[DataSample],
                 num_classes: int) -> torch.Tensor:
    """Target matrix ``(N, C)`` with 1 positive, 0 negative, -1 ignored.

    This is mmtwoway's ignored-label convention: a sample whose labels are
    partly unknown carries ``gt_score`` (1 / 0 / -1 per class); a fully
    labelled one may carry only ``gt_label`` (its positive class indices),
    and every other class is negative. Samples of both kinds may share a
    batch.
    """
    rows = []
    for sample in data_samples:
        if 'gt_score' in sample:
            row = sample.gt_score.float()
            if row.numel() != num_classes:
                raise ValueError(
                    f'gt_score of {sample.get("img_path", "a sample")} has '
                    f'{row.numel()} entries but the head has {num_classes} '
                    'classes; check num_classes in the model config.')
        else:
            labels = sample.gt_label.long().flatten()
            if labels.numel() and (labels.min() < 0
                                   or labels.max() >= num_classes):
                raise ValueError(
                    f'gt_label {labels.tolist()} of '
                    f'{sample.get("img_path", "a sample")} is outside '
                    f'[0, {num_classes}); check num_classes in the config.')
            row = torch.zeros(num_classes)
            row[labels] = 1.
        rows.append(row)
    return torch.stack(rows)


@MODELS.register_module()
class TwoWayLinearClsHead(MultiLabelLinearClsHead):
    """Linear multi-label head whose default loss is ``TwoWayLoss``.

    Targets come from :func:`build_target`, so ignored labels (``gt_score``
    entries of -1) reach the loss as ignored.

    Predictions: the two-way loss compares logits with each other and is
    invariant to adding a constant to all of them, so the logits have no
    zero point and ``sigmoid(logit) > 0.5`` means nothing. ``pred_score``
    therefore holds the raw logits: a ranking score, which is all mAP needs
    (a sigmoid would only saturate large logits into ties). ``pred_label``
    holds the labels of the head's :class:`~mmtwoway.evaluation.Decision`:
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
        self.thr = thr
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
        """Build the (N, C) target with ignored entries and call the loss."""
        target = build_target(data_samples, cls_score.size(-1))
        target = target.to(cls_score.device, non_blocking=True)
        loss = self.loss_module(
            cls_score, target, avg_factor=cls_score.size(0), **kwargs)
        return dict(loss=loss)

    def _get_predictions(self, cls_score: torch.Tensor,
                         data_samples: Optional[List[DataSample]]
                         ) -> List[DataSample]:
        """Store raw logits as ``pred_score`` and the decided labels."""
        scores = cls_score.detach().float()
        if data_samples is None:
            data_samples = [DataSample() for _ in range(scores.size(0))]
        decided = self.decision(scores)
        for sample, score, mask in zip(data_samples, scores, decided):
            sample.set_pred_score(score).set_pred_label(
                torch.where(mask)[0])
            sample.set_metainfo(self._decision_meta)
        return data_samples
