"""Non-interpolated average precision and the paper's two mAPs (eq. 23, 24).

Counts come from sorted slices and ``searchsorted`` (ties taken whole).
"""
from typing import NamedTuple, Optional, Tuple, Union

import numpy as np
import torch

from mmtwoway.structures.targets import check_target_not_nan

ArrayLike = Union[torch.Tensor, np.ndarray]

_NEG_INF = float('-inf')

# Default working-memory budget of average_precision / mean_ap (bytes).
DEFAULT_MAX_MEMORY = 1 << 30

# The two ways of eq. 23 / 24 and the dim the APs run along: mAP@class
# ranks each class (column) over the samples, mAP@sample each sample (row)
# over the classes.
_WAY_TO_DIM = {'class': 0, 'sample': 1}


def way_to_dim(way: str) -> int:
    """The ``dim`` of :func:`average_precision` behind a mAP way.

    Args:
        way (str): ``'class'`` (eq. 23, AP of every class over the samples) or
            ``'sample'`` (eq. 24, AP of every sample over the classes).

    Returns:
        int: 0 for ``'class'``, 1 for ``'sample'``.

    Raises:
        ValueError: If ``way`` is neither.
    """
    if way not in _WAY_TO_DIM:
        raise ValueError(f"way must be one of {tuple(_WAY_TO_DIM)}, "
                         f'got {way!r}')
    return _WAY_TO_DIM[way]


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    """A detached CPU tensor sharing memory with ``x`` where possible."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    x = np.asarray(x)
    if any(stride < 0 for stride in x.strides):  # torch refuses those views
        x = x.copy()
    return torch.as_tensor(x)


def _check_inputs(scores: ArrayLike,
                  targets: ArrayLike,
                  scan_nan: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """Validate and convert the inputs of :func:`average_precision`.

    Scores keep float32 / float64 (casting float64 down could create ties
    that the caller's data does not have); lower precision floats are
    widened to float32 and integers to float64, both exactly. NaN scores
    are not looked for here: the sort finds them for free. A NaN target is
    an error (integer targets are not scanned).
    """
    scores = _as_tensor(scores)
    targets = _as_tensor(targets)
    if scores.shape != targets.shape or scores.dim() != 2:
        raise ValueError('scores and targets must be 2-D with the same shape '
                         f'(samples x classes), got scores of shape '
                         f'{tuple(scores.shape)} and targets of shape '
                         f'{tuple(targets.shape)}')
    if scores.dtype not in (torch.float32, torch.float64):
        scores = scores.to(torch.float32 if scores.is_floating_point() else
                           torch.float64)
    if targets.dtype == torch.bfloat16:  # the one dtype numpy lacks
        targets = targets.float()
    # NaN is neither positive, negative nor ignored (see .targets).
    if scan_nan:
        check_target_not_nan(targets, 'targets')
    return scores, targets


def _sort_rows(rows: torch.Tensor) -> torch.Tensor:
    """Every row sorted ascending, NaN last.

    numpy's sort, because it sorts the values alone; ``torch.sort`` also
    builds the int64 indices and takes several times longer.
    """
    return torch.from_numpy(np.sort(rows.numpy(), axis=1))


def _count_at_least(sorted_rows: torch.Tensor, queries: torch.Tensor,
                    num_fill: torch.Tensor) -> torch.Tensor:
    """Per row, how many entries of ``sorted_rows`` are ``>=`` each query.

    ``sorted_rows`` holds ``num_fill[k]`` fill values of -inf in row k that
    stand for excluded entries; they are ``>=`` only a query of -inf, so
    they are subtracted there. A real -inf score is thus still handled.
    """
    smaller = torch.searchsorted(sorted_rows, queries, side='left')
    at_least = sorted_rows.shape[1] - smaller
    return at_least - num_fill[:, None] * (queries == _NEG_INF)


class PositiveRanks(NamedTuple):
    """Where every positive of every slice ranks (see :func:`rank_positives`).

    Slices are rows here: K slices of L entries. The W columns of
    ``queries``, ``hits`` and ``retrieved`` hold each slice's positives in
    ascending score order after ``num_pad`` leading paddings.

    Attributes:
        ranked: (K, L) every slice's scores ascending, its ignored entries
            first as -inf.
        num_ignored: (K,) number of ignored entries of every slice.
        queries: (K, W) the positive scores ascending, paddings -inf first.
        num_pad: (K,) number of paddings of every slice.
        hits: (K, W) number of positives with a score >= the query.
        retrieved: (K, W) number of non-ignored entries with a score >= the
            query: the rule ``score >= query`` has ``hits`` true and
            ``retrieved - hits`` false positives, ties taken whole.
    """
    ranked: torch.Tensor
    num_ignored: torch.Tensor
    queries: torch.Tensor
    num_pad: torch.Tensor
    hits: torch.Tensor
    retrieved: torch.Tensor

    def real_mask(self) -> torch.Tensor:
        """(K, W) boolean mask of the real positives (not paddings)."""
        return torch.arange(self.queries.shape[1]) >= self.num_pad[:, None]

    def num_positives(self) -> torch.Tensor:
        """(K,) number of positives of every slice."""
        return self.queries.shape[1] - self.num_pad


def rank_positives(scores: ArrayLike,
                   targets: ArrayLike,
                   dim: int = 0) -> PositiveRanks:
    """Count, for every positive, the positives and entries scored >= it.

    These two counts at every positive are all that AP needs (and all that
    the F1 of a threshold at a positive's score needs).

    Args:
        scores (ArrayLike):
            (samples, classes) scores; NaN only at ignored entries.
        targets (ArrayLike):
            Same shape; ``> 0`` positive, ``== 0`` negative, ``< 0``
            ignored (removed from the ranking).
        dim (int): 0 to rank each column (a class over the samples), 1 each row
            (a sample over the classes).

    Returns:
        PositiveRanks: the sorted slices and the counts, slices as rows.

    Raises:
        ValueError: If the shapes differ or are not 2-D, there is no entry,
            ``scores`` has NaN at a non-ignored entry or ``dim`` is not 0
            or 1.
    """
    scores, targets = _check_inputs(scores, targets)
    if dim not in (0, 1):
        raise ValueError(f'dim must be 0 (classes) or 1 (samples), got {dim}')
    if scores.numel() == 0:
        raise ValueError('cannot rank an empty score matrix of shape '
                         f'{tuple(scores.shape)}')
    if dim == 0:  # slices become rows
        scores, targets = scores.T, targets.T
    positive, ignored = targets > 0, targets < 0
    # Ignored entries sort first as -inf, below every real query.
    ranked = _sort_rows(scores.masked_fill(ignored, _NEG_INF))
    if ranked[:, -1].isnan().any():  # the sort puts NaN last in its row
        raise ValueError(f'scores contain {int(ranked.isnan().sum())} NaN '
                         'value(s) at non-ignored entries; a ranking metric '
                         'cannot order them')
    # Each slice's positive scores ascending, after its other entries as
    # -inf; the last ``width`` columns hold every slice's positives.
    num_pos = positive.sum(1)
    width = int(num_pos.max())
    queries = _sort_rows(scores.masked_fill(~positive, _NEG_INF))
    queries = queries[:, queries.shape[1] - width:].contiguous()
    num_pad, num_ignored = width - num_pos, ignored.sum(1)
    return PositiveRanks(
        ranked=ranked,
        num_ignored=num_ignored,
        queries=queries,
        num_pad=num_pad,
        hits=_count_at_least(queries, queries, num_pad),
        # Ignored entries sit at -inf; _count_at_least takes them out again.
        retrieved=_count_at_least(ranked, queries, num_ignored))


def slices_per_chunk(slice_len: int, itemsize: int,
                     max_memory: Optional[int]) -> int:
    """How many slices of ``slice_len`` entries one chunk may hold.

    The working memory of :func:`rank_positives` on K slices of L entries
    is bounded by ``K * L * bytes_per_entry``: two -inf filled copies of
    the scores and their two sorted copies, two boolean masks, and, at
    worst (every entry a positive), the int64 counts of the queries.

    Args:
        slice_len (int): L, the entries of one slice.
        itemsize (int): Bytes of one score (4 or 8).
        max_memory (int, optional): Budget in bytes; None: no limit.

    Returns:
        int: K >= 1 (one slice even if it alone exceeds the budget).
    """
    if max_memory is None:
        return 1 << 62
    if max_memory <= 0:
        raise ValueError(f'max_memory must be a positive number of bytes or '
                         f'None, got {max_memory!r}')
    per_entry = 5 * itemsize + 2 + 3 * 8
    return max(1, int(max_memory) // max(1, slice_len * per_entry))


def _check_nan_by_rows(targets: torch.Tensor, rows: int) -> None:
    """:func:`check_target_not_nan` over blocks of ``rows`` rows.

    Scanning block by block keeps the boolean mask small; only when a
    block has a NaN is the whole matrix scanned again, for the message.
    """
    if not targets.is_floating_point():
        return
    for start in range(0, targets.shape[0], max(1, rows)):
        if bool(torch.isnan(targets[start:start + rows]).any()):
            check_target_not_nan(targets, 'targets')


def average_precision(scores: ArrayLike,
                      targets: ArrayLike,
                      dim: int = 0,
                      max_memory: Optional[int] = DEFAULT_MAX_MEMORY
                      ) -> torch.Tensor:
    """Non-interpolated average precision of every column or row.

    ``AP = 1/P * sum_{positive i} #{positives j: s_j >= s_i} / #{entries j:
    s_j >= s_i}``, the mean over the positives of the precision at each.
    Equals ``sklearn.metrics.average_precision_score`` on each slice, ties
    included (a group of tied scores is evaluated at its end), after
    removing the slice's ignored entries. The slices are ranked in chunks
    whose working memory stays within ``max_memory`` bytes (beyond the
    inputs); each slice's AP does not depend on the chunking.

    Args:
        scores (ArrayLike):
            Scores of shape (samples, classes); any monotone function
            of the probabilities (e.g. logits) gives the same APs. NaN is
            allowed only at ignored entries.
        targets (ArrayLike):
            Same shape; ``> 0`` positive, ``== 0`` negative, ``< 0``
            ignored (removed from the ranking).
        dim (int):
            0 for the AP of each column (a class ranked over the samples),
            1 for the AP of each row (a sample ranked over the classes).
        max_memory (int, optional): Working-memory budget in bytes
            (default 1 GiB); None ranks every slice at once.

    Returns:
        torch.Tensor: float64 APs in [0, 1], one per class (``dim=0``) or
        per sample (``dim=1``); NaN for a slice without positives (and for
        every slice of an empty matrix).

    Raises:
        ValueError: If the shapes differ or are not 2-D, ``scores`` has NaN
            at a non-ignored entry, ``targets`` has NaN anywhere or ``dim``
            is not 0 or 1.
    """
    scores, targets = _check_inputs(scores, targets, scan_nan=False)
    if dim not in (0, 1):
        raise ValueError(f'dim must be 0 (classes) or 1 (samples), got {dim}')
    num_slices, slice_len = scores.shape[1 - dim], scores.shape[dim]
    chunk = slices_per_chunk(slice_len, scores.element_size(), max_memory)
    _check_nan_by_rows(targets, chunk if dim == 1 else max(
        1, chunk * slice_len // max(1, num_slices)))
    if scores.numel() == 0:
        return torch.full((num_slices, ), float('nan'), dtype=torch.float64)
    aps = []
    for start in range(0, num_slices, chunk):
        part = slice(start, start + chunk)
        if dim == 0:
            aps.append(_chunk_ap(scores[:, part], targets[:, part], dim))
        else:
            aps.append(_chunk_ap(scores[part], targets[part], dim))
    return torch.cat(aps)


def _chunk_ap(scores: torch.Tensor, targets: torch.Tensor,
              dim: int) -> torch.Tensor:
    """The APs of the slices of one chunk (see :func:`average_precision`)."""
    if dim == 0:  # slices become rows
        scores, targets = scores.T, targets.T
    scores, targets = _compact_rows(scores, targets)
    ranks = rank_positives(scores, targets, 1)
    # AP is the mean precision, hits / retrieved, at the positives; a real
    # positive retrieves at least itself, so its ratio is finite.
    precision = ranks.hits.double() / ranks.retrieved.clamp(min=1).double()
    num_pos = ranks.num_positives()
    ap = precision.masked_fill(~ranks.real_mask(), 0.).sum(1) / num_pos
    return ap.masked_fill(num_pos == 0, float('nan'))


def _compact_rows(scores: torch.Tensor, targets: torch.Tensor
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Every row's labelled entries moved to its front, the rest ignored.

    An AP depends on the non-ignored entries of its slice only, so the
    compacted rows give the same APs; with mostly ignored targets (Open
    Images: 99.9%) they are far shorter to sort. Rows are compacted only
    when that at least halves their width.

    Args:
        scores (torch.Tensor): (K, L) scores, slices as rows.
        targets (torch.Tensor): (K, L) targets.

    Returns:
        tuple: ``(scores, targets)`` of shape (K, W), W <= L.
    """
    if targets.dtype == torch.bool or targets.numel() == 0:
        return scores, targets
    keep = targets >= 0
    counts = keep.sum(1)
    width = max(1, int(counts.max()))
    if 2 * width > keep.shape[1]:
        return scores, targets
    rows, cols = keep.nonzero(as_tuple=True)  # row-major order
    del keep
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(rows.numel()) - starts[rows]
    out_scores = scores.new_zeros((scores.shape[0], width))
    out_targets = torch.full((scores.shape[0], width), -1,
                             dtype=targets.dtype)
    out_scores[rows, pos] = scores[rows, cols]
    out_targets[rows, pos] = targets[rows, cols]
    return out_scores, out_targets


def mean_ap(scores: ArrayLike,
            targets: ArrayLike,
            way: str = 'class',
            max_memory: Optional[int] = DEFAULT_MAX_MEMORY) -> torch.Tensor:
    """mAP@class (eq. 23) or mAP@sample (eq. 24) in percent.

    The mean runs over the classes (or samples) with at least one positive;
    the others have no AP and are left out, as in the authors' code (unlike
    mmpretrain's ``AveragePrecision``, which counts them as 0).

    Args:
        scores (ArrayLike): Scores of shape (samples, classes), see
            :func:`average_precision`.
        targets (ArrayLike):
            Same shape; ``> 0`` positive, ``== 0`` negative, ``< 0``
            ignored.
        way (str): ``'class'`` for mAP@class, ``'sample'`` for mAP@sample.
        max_memory (int, optional): Working-memory budget in bytes beyond
            the inputs (default 1 GiB): mAP@class ranks the classes in
            chunks of columns, mAP@sample the samples in chunks of rows.
            None ranks everything at once.

    Returns:
        torch.Tensor: 0-dim float64 tensor, the mAP in percent.

    Raises:
        ValueError: If ``way`` is unknown, the inputs are invalid (see
            :func:`average_precision`) or no slice has a positive.
    """
    dim = way_to_dim(way)
    ap = average_precision(scores, targets, dim=dim, max_memory=max_memory)
    has_pos = ~ap.isnan()
    if not has_pos.any():
        raise ValueError(f'mAP@{way} is undefined: none of the {ap.numel()} '
                         f'{way} slices has a positive target')
    return ap[has_pos].mean() * 100
