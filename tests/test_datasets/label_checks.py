"""Checks that ignored labels reach the loss and the metric as ignored.

Used by the dataset tests: the samples come from a real dataset and a real
pipeline (``PackInputs`` included), the targets from the head's
``build_target``, and the loss and metric are the shipped ones.
"""
import torch
from mmengine.dataset import pseudo_collate

from mmtwoway.evaluation import MultiLabelMAP
from mmtwoway.structures import build_target
from mmtwoway.models.losses import TwoWayLoss


def packed_samples(dataset):
    """Every sample of ``dataset`` through its pipeline, collated."""
    batch = pseudo_collate([dataset[i] for i in range(len(dataset))])
    return batch['data_samples']


def evaluate(samples, scores, **metric_kwargs):
    """MultiLabelMAP of ``scores`` against the packed samples."""
    metric = MultiLabelMAP(**metric_kwargs)
    outputs = []
    for sample, score in zip(samples, scores):
        out = sample.to_dict()
        out['pred_score'] = score
        outputs.append(out)
    metric.process(None, outputs)
    return metric.evaluate(len(outputs))


def assert_ignored_entries_ignored(samples, expected: torch.Tensor) -> None:
    """The loss and the metric neither use nor reward ignored entries.

    Args:
        samples: Packed data samples of a dataset.
        expected: The ``(N, C)`` target (1 / 0 / -1) derived by hand from
            the fixture.
    """
    num_classes = expected.size(1)
    target = build_target(samples, num_classes)
    torch.testing.assert_close(target, expected.float())
    ignored = target < 0
    assert ignored.any() and (~ignored).any()

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(target.shape, generator=gen, requires_grad=True)
    loss_fn = TwoWayLoss()
    loss = loss_fn(logits, target)
    loss.backward()
    # No gradient flows into an ignored entry, some into the others.
    assert torch.all(logits.grad[ignored] == 0)
    assert logits.grad[~ignored].abs().sum() > 0
    # Any value of the ignored logits gives the same loss ...
    shifted = logits.detach().clone()
    shifted[ignored] = 50.0 + 10 * torch.rand(
        int(ignored.sum()), generator=gen)
    torch.testing.assert_close(loss_fn(shifted, target), loss.detach())
    # ... while reading them as negatives would change it.
    assert not torch.allclose(
        loss_fn(shifted, target.clamp(min=0)), loss.detach())

    # The metric: ignored entries may score anything.
    plain = evaluate(samples, logits.detach())
    high = evaluate(samples, shifted)
    assert plain == high
    # Read as negatives, the high-scoring ignored entries would cost AP.
    as_negative = [s.clone() for s in samples]
    for s, row in zip(as_negative, target):
        s.set_gt_score(row.clamp(min=0))
    assert evaluate(as_negative, shifted) != high
