"""``MultiLabelF1``: precision, recall and F1 of decided label sets."""
import logging
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmpretrain.registry import METRICS

from ..decision import Decision, check_class_names, label_set_scores
from mmtwoway.structures import (DIFFICULT_TARGETS, batch_dicts, batch_scores,
                                 metric_target, to_cpu)
from .results import add_sample_idx, check_not_empty, unique_results


@METRICS.register_module()
class MultiLabelF1(BaseMetric):
    """CP, CR, CF1, OP, OR, OF1 (percent) of multi-label decisions.

    mAP only ranks; users of a multi-label model get label sets, and their
    quality is measured by the per-class (CP, CR, CF1) and overall (OP, OR,
    OF1) precision / recall / F1 of the multi-label literature. This metric
    reports
    them beside ``MultiLabelMAP``::

        val_evaluator = [
            dict(type='MultiLabelMAP'),
            dict(type='MultiLabelF1'),                 # the head's decision
            # or its own: dict(type='MultiLabelF1', calibration='cal.json')
        ]

    The definitions are those of :func:`~mmtwoway.evaluation.label_set_scores`
    (CF1 is the harmonic mean of CP and CR); ignored labels (target < 0) are
    left out. Samples are de-duplicated by ``sample_idx`` in distributed
    evaluation, as in ``MultiLabelMAP``.

    By default the label sets are the ``pred_label`` of the data samples,
    i.e. the decision of the model's head (for ``TwoWayLinearClsHead``: its
    calibration file, ``thr`` or top-k; the log says which). Any one of
    ``calibration``, ``thr``, ``topk`` or ``delta`` makes the metric decide
    from ``pred_score`` itself instead.

    With the default prefix the keys are ``'multi-label/CP'`` ...
    ``'multi-label/OF1'``:

    * CP / CR: mean per-class precision / recall over the classes with at
      least one positive (a class never predicted has precision 0);
    * CF1: harmonic mean of CP and CR (not the mean of per-class F1s);
    * OP / OR / OF1: precision / recall / F1 of all entries pooled.

    Args:
        calibration (str, optional):
            A calibration file of ``tools/calibrate.py``; its rule
            decides. Its classes must be those of the dataset.
        thr (float | Sequence[float], optional):
            One logit threshold, or one per class.
        topk (int, optional): The ``topk`` best classes of every image.
        delta (float, optional):
            Classes within ``delta`` of the image's top score.
        difficult_as (str): What a class of ``gt_label_difficult`` that is not
            positive becomes: ``'ignore'`` (default), ``'negative'`` or
            ``'positive'``.
        collect_device (str): ``'cpu'`` or ``'gpu'``, to gather across ranks.
        prefix (str, optional): Key prefix; ``None`` uses ``'multi-label'``.
        collect_dir (str, optional):
            Folder to gather in with ``collect_device='cpu'``.

    Examples:
        Two images, three classes, top-1 decisions: the first image's label
        (class 0) and one of the second image's two (class 1) are found,
        class 2 is never predicted. Per class P = (1, 1, 0), R = (1, 1, 0),
        so CP = CR = CF1 = 66.7; pooled TP = 2 of 2 predicted and 3
        positive, so OP = 100, OR = 66.7, OF1 = 80::

            metric = MultiLabelF1(topk=1)
            metric.process(None, [
                DataSample().set_pred_score(torch.tensor([.9, .1, .5]))
                .set_gt_label([0]),
                DataSample().set_pred_score(torch.tensor([.2, .8, .4]))
                .set_gt_label([1, 2])])
            metric.evaluate(2)  # {'multi-label/CP': 66.67, ...}
    """

    default_prefix: Optional[str] = 'multi-label'

    def __init__(self,
                 calibration: Optional[str] = None,
                 thr: Union[None, float, Sequence[float]] = None,
                 topk: Optional[int] = None,
                 delta: Optional[float] = None,
                 difficult_as: str = 'ignore',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        given = {
            k: v
            for k, v in dict(
                calibration=calibration, thr=thr, topk=topk,
                delta=delta).items() if v is not None
        }
        if len(given) > 1:
            raise ValueError('MultiLabelF1 takes at most one of calibration, '
                             f'thr, topk and delta, got {sorted(given)}')
        if difficult_as not in DIFFICULT_TARGETS:
            raise ValueError(f'difficult_as must be one of '
                             f'{tuple(DIFFICULT_TARGETS)}, got '
                             f'{difficult_as!r}')
        self.difficult_as = difficult_as
        self.decision: Optional[Decision] = None
        if calibration is not None:
            self.decision = Decision.from_file(calibration)
        elif thr is not None:
            self.decision = Decision('thresholds', thresholds=thr)
        elif topk is not None:
            self.decision = Decision('topk', k=topk)
        elif delta is not None:
            self.decision = Decision('relative', delta=delta)
        self._checked = False
        self._decision_warning: Optional[str] = None

    def warn_about_decision(self, reason: str) -> None:
        """Warn with every result that the model's labels mean nothing.

        ``TrainSettingsHook`` calls this before validation and testing when
        the head thresholds sigmoid scores at a fixed value but was trained
        with a shift-invariant loss (e.g. ``MultiLabelLinearClsHead`` with
        ``TwoWayLoss``). A metric with a decision of its own is unaffected.

        Args:
            reason (str): Why, and what to do; part of the warning.
        """
        self._decision_warning = reason

    def _check_once(self, sample: Dict[str, Any], num_classes: int) -> None:
        """Refuse a decision fitted for other classes than the dataset's.

        Runs on the first sample: ``dataset_meta`` is set by the loop before
        the first batch, and the head stamps its decision on every sample.
        """
        if self._checked:
            return
        self._checked = True
        classes = (self.dataset_meta or {}).get('classes')
        if self.decision is not None:
            self.decision.check_num_classes(num_classes, 'the predictions')
            self.decision.check_classes(classes, 'the dataset')
        else:
            check_class_names(
                sample.get('decision_classes'), classes,
                "the model's calibration file (model.head.calibration) ",
                'the dataset')

    def process(self, data_batch: Any,
                data_samples: Sequence[Dict[str, Any]]) -> None:
        """Store the decided labels and the target of every sample.

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence[Dict[str, Any]]):
                The model's outputs, as dicts or data samples.
        """
        samples = batch_dicts(data_samples)
        if not samples:
            return
        scores = torch.stack(batch_scores(samples))
        num_classes = scores.shape[1]
        self._check_once(samples[0], num_classes)
        if self.decision is not None:
            decided = self.decision(scores)
        else:
            decided = self._pred_label_masks(samples, num_classes)
        targets = metric_target(samples, num_classes, self.difficult_as)
        for sample, mask, target in zip(samples, decided, targets):
            result = dict(decided=mask.clone(), target=target)
            add_sample_idx(result, sample)
            if self.decision is None and sample.get('decision'):
                result['decision'] = sample['decision']
            self.results.append(result)

    @staticmethod
    def _pred_label_masks(samples: Sequence[Dict[str, Any]],
                          num_classes: int) -> torch.Tensor:
        """The ``(N, C)`` bool mask of the samples' ``pred_label``."""
        for sample in samples:
            if sample.get('pred_label') is None:
                raise ValueError(
                    'MultiLabelF1 without a decision of its own uses the '
                    "model's pred_label, but a data sample has none (keys "
                    f'{sorted(sample)}); give calibration, thr, topk or '
                    'delta.')
        labels = to_cpu([
            torch.as_tensor(s['pred_label']).reshape(-1).long()
            for s in samples
        ])
        masks = torch.zeros(len(samples), num_classes, dtype=torch.bool)
        for mask, label in zip(masks, labels):
            if label.numel() and (label.min() < 0
                                  or label.max() >= num_classes):
                raise ValueError(f'pred_label {label.tolist()} is outside '
                                 f'[0, {num_classes})')
            mask[label] = True
        return masks

    def compute_metrics(self,
                        results: List[Dict[str, Any]]) -> Dict[str, float]:
        """CP, CR, CF1, OP, OR, OF1 in percent over the gathered results.

        Args:
            results (List[Dict[str, Any]]):
                The results of :meth:`process` from every rank.

        Returns:
            dict: The six values, without the prefix ``evaluate`` adds.
        """
        unique = unique_results(results)
        check_not_empty(unique, type(self).__name__)
        decided = torch.stack([r['decided'] for r in unique])
        targets = torch.stack([r['target'] for r in unique])
        if self.decision is not None:
            how = self.decision.describe()
        else:
            how = unique[0].get('decision', "the model's pred_label")
        print_log(f'MultiLabelF1: label sets decided by {how}',
                  logger='current')
        if self.decision is None and self._decision_warning:
            print_log(
                'MultiLabelF1: these F1 values mean nothing: '
                f'{self._decision_warning}',
                logger='current',
                level=logging.WARNING)
        return label_set_scores(decided, targets).overall
