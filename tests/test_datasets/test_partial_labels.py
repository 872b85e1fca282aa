"""The compact label lists of partial samples and their gt_score."""
import numpy as np
import pytest

from mmtwoway.structures import label_scores


def test_negatives_given_rest_ignored():
    np.testing.assert_array_equal(
        label_scores(5, [1, 3], negatives=[0]), [0, 1, -1, 1, -1])


def test_ignored_given_rest_negative():
    np.testing.assert_array_equal(
        label_scores(5, [4], ignored=[0, 2]), [-1, 0, -1, 0, 1])
    scores = label_scores(3, [], ignored=[])
    assert scores.dtype == np.float32 and not scores.any()


def test_exactly_one_mode_and_range():
    with pytest.raises(ValueError, match='exactly one'):
        label_scores(3, [0])
    with pytest.raises(ValueError, match='exactly one'):
        label_scores(3, [0], negatives=[1], ignored=[2])
    with pytest.raises(ValueError, match=r'outside \[0, 3\)'):
        label_scores(3, [3], negatives=[])
    with pytest.raises(ValueError, match=r'outside \[0, 3\)'):
        label_scores(3, [0], negatives=[-1])
