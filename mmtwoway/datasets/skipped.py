"""Bookkeeping of the records (or labels) a dataset leaves out, and why."""
import logging
from typing import Dict, List

from mmengine.logging import print_log

from mmtwoway.utils.misc import listing

__all__ = ['SkippedRecords', 'listing']


class SkippedRecords:
    """The records one dataset skipped, grouped by reason.

    mmtwoway's datasets either stop with an error naming the file and record,
    or skip a record on purpose (a documented rule, or a policy the user
    chose); a skip is never silent. Reasons are full phrases that say what
    happened (``'skipped, image not found'``, or for a single label ``'kept,
    attribute made ignored: ...'``). Each dataset keeps a
    :class:`SkippedRecords`: the log gets one warning per reason with the
    count and the first examples, and ``dataset.skipped`` keeps the full list
    (``tools/misc/dataset_stats.py`` prints it).

    Args:
        name (str): The dataset's name, the prefix of log lines.

    Examples:
        >>> skipped = SkippedRecords('VAW')
        >>> skipped.add('skipped, box outside its image',
        ...             'test.json: instance 7')
        >>> skipped.counts()
        {'skipped, box outside its image': 1}
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.by_reason: Dict[str, List[str]] = {}

    def add(self, reason: str, record: str) -> None:
        """Record that ``record`` (file and record id) was skipped."""
        self.by_reason.setdefault(reason, []).append(record)

    def counts(self) -> Dict[str, int]:
        """How many records each reason skipped."""
        return {reason: len(v) for reason, v in self.by_reason.items()}

    def log(self, total: int, unit: str = 'samples') -> None:
        """Log one warning per reason: count, total and first examples.

        Args:
            total (int): The number of records read.
            unit (str): What a record is, for the message.
        """
        for reason, records in self.by_reason.items():
            print_log(
                f'{self.name}: {len(records)} of {total} {unit}: {reason}: '
                f'{listing(records)}',
                logger='current',
                level=logging.WARNING)

    def finish(self,
               kept: list,
               total: int,
               source: str,
               unit: str = 'samples') -> list:
        """Log the skips and refuse an empty dataset.

        Args:
            kept (list): The samples left.
            total (int): The number of records read.
            source (str): The annotation file(s), for the error.
            unit (str): What a record is, for the messages.

        Returns:
            list: ``kept``.

        Raises:
            ValueError: ``kept`` is empty.
        """
        self.log(total, unit)
        if not kept:
            raise ValueError(
                f'{self.name}: no sample left from {source} ({total} {unit} '
                f'read; skipped: {self.counts() or "none"}).')
        return kept

    def as_dict(self) -> Dict[str, List[str]]:
        """A copy of the skipped records by reason."""
        return {reason: list(v) for reason, v in self.by_reason.items()}
