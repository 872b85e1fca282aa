"""Base of the datasets whose samples are instance boxes (VAW, WIDER)."""
from typing import Callable, List, Sequence, Union

from mmpretrain.datasets import MultiLabelDataset

from .annotations import join_files
from .cache import resolve_cache_dir
from .images import check_missing_policy, drop_missing_images, image_sizes
from .partial_labels import PartialLabelMixin
from .skipped import SkippedRecords
from .transforms.crop_instance import visible_extent


class InstanceDataset(PartialLabelMixin, MultiLabelDataset):
    """A partially labelled multi-label dataset, one sample per box.

    A subclass parses its files into one sample per box::

        dict(img_path, instance_bbox=[x1, y1, x2, y2], gt_label=[...],
             neg_label=[...], **ids)

    and :meth:`InstanceDataset.finish` applies what both datasets share:

    * the missing-image policy (``missing_images``: ``'error'`` or ``'skip'``);
    * **the box rule**: a box is kept only if at least ``min_box_size`` pixels
      (default 1) of its width and of its height lie inside the image, whose
      size is read from the file header (and cached). Degenerate boxes (width
      or height <= 0) and boxes wholly outside the image fail it; they are
      skipped, counted and logged with their file and record. Boxes partly
      outside are kept and clipped by
      :class:`~mmtwoway.datasets.transforms.CropInstance`;
    * zero samples left is an error.

    Labels follow mmtwoway's ignored-label convention
    (:mod:`mmtwoway.datasets.partial_labels`): ``gt_score`` is 1 for
    ``gt_label``, 0 for ``neg_label`` and -1 (ignored) for every other class.

    Args:
        ann_file (str | Sequence[str]): Annotation file(s), relative to
            ``data_root`` unless absolute.
        missing_images (str): ``'error'`` (default) or ``'skip'`` (counted
            and logged).
        min_box_size (float): Pixels of a box's width and of its height that
            must lie inside the image for the box to be kept. Defaults to 1.
        cache (bool | str): Where parsed indexes and image sizes are cached:
            True (default) for ``<data_root>/.mmtwoway_cache``, a folder, or
            False for no cache. See :mod:`mmtwoway.datasets.cache`.
        **kwargs: Passed to :class:`mmpretrain.datasets.MultiLabelDataset`
            (``data_root``, ``data_prefix``, ``pipeline``, ``test_mode``,
            ``metainfo``, ``classes`` ...).
    """

    def __init__(self,
                 ann_file: Union[str, Sequence[str]],
                 missing_images: str = 'error',
                 min_box_size: float = 1.0,
                 cache: Union[bool, str] = True,
                 **kwargs) -> None:
        name = type(self).__name__
        self.missing_images = check_missing_policy(name, missing_images)
        if not min_box_size > 0:
            raise ValueError(f'{name}: min_box_size must be > 0, got '
                             f'{min_box_size!r}')
        self.min_box_size = float(min_box_size)
        data_root = kwargs.get('data_root', '')
        self.ann_files = join_files(data_root, ann_file, name)
        self.cache_dir = resolve_cache_dir(cache, data_root, self.ann_files[0])
        self.skipped = SkippedRecords(name)
        # mmengine joins a single str ann_file to data_root; ours may be a
        # list, so the files are joined above and BaseDataset gets none.
        super().__init__(ann_file='', **kwargs)

    def finish(self, data_list: List[dict], describe: Callable[[dict], str],
               hint: str) -> List[dict]:
        """Apply the missing-image policy and the box rule, log the skips.

        Args:
            data_list (list[dict]): Every parsed sample.
            describe (Callable): Names the file and record of a sample.
            hint (str): What to check when images are missing.

        Returns:
            list[dict]: The kept samples, in order.

        Raises:
            FileNotFoundError: Images are missing and ``missing_images`` is
                ``'error'``.
            ValueError: No sample is left.
        """
        name = type(self).__name__
        total = len(data_list)
        sizes = image_sizes([info['img_path'] for info in data_list],
                            self.cache_dir, name)
        missing = {path for path, size in sizes.items() if size is None}
        data_list = drop_missing_images(name, data_list, self.missing_images,
                                        describe, hint, self.skipped, missing)
        reason = (f'skipped, less than {self.min_box_size:g} px of the box '
                  'inside its image')
        kept = []
        for info in data_list:
            width, height = sizes[info['img_path']]
            w, h = visible_extent(info['instance_bbox'], width, height)
            if w < self.min_box_size or h < self.min_box_size:
                self.skipped.add(
                    reason, f'{describe(info)}: box (x1, y1, x2, y2) '
                    f'{info["instance_bbox"]} in a {width}x{height} image')
                continue
            kept.append(info)
        return self.skipped.finish(kept, total, str(self.ann_files), 'boxes')

    def extra_repr(self) -> List[str]:
        """Lines added to ``repr(dataset)``."""
        return [
            f'Annotation files: \t{self.ann_files}',
            f'Prefix of images: \t{self.img_prefix}',
            f'Skipped: \t{self.skipped.counts()}',
        ]
