"""Per-sample results of the metrics: each sample once, never none."""
from typing import Any, Dict, List


def unique_results(results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """``results`` without the repeats of a ``sample_idx`` (first kept).

    Results without a ``sample_idx`` are all kept.

    Args:
        results (List[Dict[str, Any]]):
            Per-sample results gathered from every rank.

    Returns:
        list: The results, each sample once, in their order.
    """
    seen = set()
    unique = []
    for result in results:
        idx = result.get('sample_idx')
        if idx is not None:
            if idx in seen:
                continue
            seen.add(idx)
        unique.append(result)
    return unique


def add_sample_idx(result: Dict[str, Any], sample: Dict[str, Any]) -> None:
    """Copy a sample's ``sample_idx`` into its result (for de-duplication)."""
    if sample.get('sample_idx') is not None:
        result['sample_idx'] = int(sample['sample_idx'])


def check_not_empty(results: List[Dict[str, Any]], metric: str) -> None:
    """Raise a clear error when an evaluation received no sample at all.

    Args:
        results (List[Dict[str, Any]]): The gathered per-sample results.
        metric (str): The metric's name, for the message.

    Raises:
        ValueError: ``results`` is empty.
    """
    if not results:
        raise ValueError(
            f'{metric} received no sample: the dataloader of this '
            'evaluation is empty, so the metric is undefined. Check the '
            "dataset's ann_file, data_root and data_prefix (and its filter "
            'settings), e.g. with tools/misc/dataset_stats.py.')
