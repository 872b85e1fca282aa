"""MS-COCO as a multi-label dataset, as the Two-way loss paper builds it."""
import contextlib
import io
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

from mmengine.fileio import join_path
from mmengine.logging import print_log
from mmpretrain.datasets import MultiLabelDataset
from mmpretrain.registry import DATASETS

from .images import check_missing_policy, drop_missing_images
from .skipped import SkippedRecords, listing

# How a COCO 2014 download is laid out; quoted in error messages so a user
# who points the dataset at the wrong folder sees what we expected.
_EXPECTED_LAYOUT = (
    'Expected the COCO layout: <data_root>/annotations/instances_train2014.'
    'json (or instances_val2014.json) next to an image folder such as '
    '<data_root>/train2014/ or <data_root>/images/train2014/; set `ann_file` '
    'and `data_prefix=dict(img_path=...)` relative to `data_root`.')

_NAME = 'CocoMultiLabel'


@DATASETS.register_module()
class CocoMultiLabel(MultiLabelDataset):
    """MS-COCO instance annotations as a multi-label dataset.

    The Two-way loss paper (Kobayashi, CVPR 2023) turns the COCO 2014 detection
    annotations into image-level labels: an image is positive for a category
    when at least one of its instance annotations (crowd ones included) has
    that category, and images without any annotation are dropped.

    Classes are the file's categories sorted by ascending ``id``: class index
    = position in that order, and ``metainfo['classes']`` holds their names.
    COCO 2014 has 80 categories with ids 1..90 (ten ids unused), so ids are
    not indices: ``person`` (id 1) is class 0 and ``toothbrush`` (id 90) is
    class 79.

    Each sample is ``dict(img_path, gt_label, img_id)``: ``gt_label`` is the
    sorted list of distinct class indices of the image's annotations, crowd
    annotations included (as the paper's authors do). COCO has no unknown
    labels, so no ``gt_score`` is emitted. Only images with at least one
    annotation are kept, sorted by image id so that sample order does not
    depend on the order of the json file. On the official files this keeps
    82,081 of the train2014 images and 40,137 of the val2014 images, the
    counts of the paper's Table 6.

    Directory layout (``data_prefix`` is configurable because the authors
    used ``images/train2014``)::

        data_root
        ├── annotations
        │   ├── instances_train2014.json
        │   └── instances_val2014.json
        ├── train2014
        │   └── COCO_train2014_000000000009.jpg ...
        └── val2014
            └── COCO_val2014_000000000042.jpg ...

    Args:
        data_root (str): Root folder that ``ann_file`` and ``data_prefix``
            are relative to. Defaults to ''.
        ann_file (str): COCO instances json. Defaults to
            ``'annotations/instances_train2014.json'``.
        data_prefix (str | dict): The image folder, as a str or as
            ``dict(img_path=...)``; the json's ``file_name`` is joined to it.
            Defaults to ``dict(img_path='train2014')``.
        pipeline (Sequence): Transforms applied to each sample. Defaults to
            an empty tuple.
        test_mode (bool): Whether the dataset is used for evaluation.
            Defaults to False.
        check_images (bool): Check at load time that every kept image file
            exists, so that a wrong ``data_prefix`` fails at once rather than
            deep inside the first epoch. Costs one ``stat`` per image.
            Defaults to True.
        missing_images (str): With ``check_images``: ``'error'`` (default)
            or ``'skip'`` (counted and logged, see ``dataset.skipped``).
        metainfo (dict, optional): Extra meta information. If it (or
            ``classes``) gives ``classes``, they must equal the json's
            category names in ascending-id order. Defaults to None.
        **kwargs: Other arguments of :class:`mmengine.dataset.BaseDataset`
            (``indices``, ``serialize_data``, ``lazy_init`` ...).

    Raises:
        FileNotFoundError: The annotation file or (with ``check_images``)
            some image files are missing.
        ValueError: The json is malformed, lacks a COCO key, has an
            annotation whose category or image is not listed, or no image is
            left after dropping those without annotations.

    Examples:
        >>> train = CocoMultiLabel(
        ...     data_root='data/coco',
        ...     ann_file='annotations/instances_train2014.json',
        ...     data_prefix='images/train2014')
        >>> len(train), len(train.CLASSES)
        (82081, 80)
    """

    def __init__(self,
                 data_root: str = '',
                 ann_file: str = 'annotations/instances_train2014.json',
                 data_prefix: Union[str, dict] = dict(img_path='train2014'),
                 pipeline: Sequence = (),
                 test_mode: bool = False,
                 check_images: bool = True,
                 missing_images: str = 'error',
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        self.check_images = check_images
        self.missing_images = check_missing_policy(_NAME, missing_images)
        self.skipped = SkippedRecords(_NAME)
        # BaseDataset joins data_root into data_prefix; keep what the user
        # wrote for error messages.
        self._given_prefix = data_prefix
        super().__init__(
            ann_file=ann_file,
            metainfo=metainfo,
            data_root=data_root,
            data_prefix=data_prefix,
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)

    def _load_coco(self):
        """Read ``self.ann_file`` with pycocotools and check its structure.

        Returns:
            pycocotools.coco.COCO: The indexed annotation file.
        """
        from pycocotools.coco import COCO

        ann_file = self.ann_file
        if not osp.isfile(ann_file):
            raise FileNotFoundError(
                f'CocoMultiLabel: annotation file "{ann_file}" not found. '
                f'{_EXPECTED_LAYOUT}')
        try:
            # pycocotools prints progress to stdout; keep the logs clean.
            with contextlib.redirect_stdout(io.StringIO()):
                coco = COCO(ann_file)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(
                f'CocoMultiLabel: "{ann_file}" is not valid JSON ({err}). '
                'Re-download or re-extract the COCO annotations.') from err
        except AssertionError as err:
            # pycocotools asserts that the top level is a dict.
            raise ValueError(
                f'CocoMultiLabel: "{ann_file}" is not a COCO instances file: '
                'its top level must be an object with "images", '
                '"annotations" and "categories".') from err
        except (KeyError, TypeError) as err:
            # pycocotools indexes records by "id"/"image_id"/"category_id".
            raise ValueError(
                f'CocoMultiLabel: "{ann_file}" has a record without the key '
                f'{err} (or a record that is not an object); every image '
                'needs "id", every annotation "id", "image_id" and '
                '"category_id", every category "id".') from err

        missing = [
            key for key in ('images', 'annotations', 'categories')
            if not isinstance(coco.dataset.get(key), list)
        ]
        if missing:
            raise ValueError(
                f'CocoMultiLabel: "{ann_file}" lacks the list(s) {missing}; '
                'a COCO instances file has "images", "annotations" and '
                '"categories". Is this a captions/keypoints/test-info file?')
        if len(coco.imgs) != len(coco.dataset['images']):
            # pycocotools keeps the last record of an id: the others, and
            # the labels meant for them, would vanish without a word.
            seen, repeated = set(), []
            for img in coco.dataset['images']:
                if img['id'] in seen and img['id'] not in repeated:
                    repeated.append(img['id'])
                seen.add(img['id'])
            raise ValueError(
                f'CocoMultiLabel: "{ann_file}" lists image id(s) more than '
                f'once: {listing(repeated, 10)}. Every image record needs its '
                'own "id"; fix or regenerate the annotation file.')
        return coco

    def _class_names(self, coco) -> List[str]:
        """Category names in ascending id order; check user-given classes."""
        cats = coco.dataset['categories']
        if len(coco.cats) != len(cats):
            raise ValueError(
                f'CocoMultiLabel: "{self.ann_file}" lists a category id more '
                'than once.')
        try:
            names = [coco.cats[cid]['name'] for cid in sorted(coco.cats)]
        except KeyError as err:
            raise ValueError(f'CocoMultiLabel: a category in '
                             f'"{self.ann_file}" has no "name".') from err
        if not names:
            raise ValueError(
                f'CocoMultiLabel: "{self.ann_file}" has no categories.')
        given = self._metainfo.get('classes')
        if given is not None and tuple(given) != tuple(names):
            # Labels are indices into the json's categories; other names
            # would silently mislabel every class.
            raise ValueError(
                f'CocoMultiLabel: `classes` {tuple(given)} differ from the '
                f'categories of "{self.ann_file}" {tuple(names)}. Leave '
                '`classes` unset: they are read from the annotation file.')
        return names

    def load_data_list(self) -> List[dict]:
        """Turn the instance annotations into image-level samples.

        Returns:
            list[dict]: ``dict(img_path, gt_label, img_id)`` per kept image,
            in ascending image id order.
        """
        coco = self._load_coco()
        ann_file = self.ann_file
        names = self._class_names(coco)
        cat_to_label: Dict[int, int] = {
            cid: idx
            for idx, cid in enumerate(sorted(coco.cats))
        }
        self._metainfo['classes'] = tuple(names)

        labels: Dict[int, set] = {}
        for ann in coco.dataset['annotations']:
            cid = ann['category_id']
            if cid not in cat_to_label:
                raise ValueError(
                    f'CocoMultiLabel: annotation id {ann["id"]} in '
                    f'"{ann_file}" has category_id {cid!r}, which is not '
                    f'among the file\'s categories {sorted(coco.cats)}. Fix '
                    'or remove that annotation.')
            if ann['image_id'] not in coco.imgs:
                raise ValueError(
                    f'CocoMultiLabel: annotation id {ann["id"]} in '
                    f'"{ann_file}" refers to image_id {ann["image_id"]!r}, '
                    'which is not among the file\'s images.')
            # iscrowd is deliberately ignored: crowd regions still show the
            # class, and the paper's authors count them as positives.
            labels.setdefault(ann['image_id'], set()).add(cat_to_label[cid])

        data_list = []
        for img_id in sorted(coco.imgs):
            if img_id not in labels:
                continue
            img = coco.imgs[img_id]
            if 'file_name' not in img:
                raise ValueError(
                    f'CocoMultiLabel: image id {img_id} in "{ann_file}" has '
                    'no "file_name".')
            data_list.append(
                dict(
                    img_path=join_path(self.img_prefix, img['file_name']),
                    gt_label=sorted(labels[img_id]),
                    img_id=img_id))

        dropped = len(coco.imgs) - len(data_list)
        print_log(
            f'CocoMultiLabel: {ann_file}: kept {len(data_list)} of '
            f'{len(coco.imgs)} images, dropped {dropped} without annotations; '
            f'{len(names)} classes.',
            logger='current')
        if not data_list:
            raise ValueError(
                f'CocoMultiLabel: no image of "{ann_file}" has an annotation '
                f'({len(coco.imgs)} images, '
                f'{len(coco.dataset["annotations"])} annotations), so the '
                'dataset would be empty. Is this an image-info-only (test) '
                'file?')
        if not self.check_images:
            return data_list
        total = len(data_list)
        data_list = drop_missing_images(
            _NAME, data_list, self.missing_images,
            lambda info: f'{info["img_path"]} (image id {info["img_id"]} of '
            f'"{ann_file}")', f'The image folder is "{self.img_prefix}" '
            f'(data_prefix={self._given_prefix!r} under data_root='
            f'{self.data_root!r}): fix data_prefix (e.g. "train2014" or '
            '"images/train2014"), or pass check_images=False.', self.skipped)
        return self.skipped.finish(data_list, total, f'"{ann_file}"',
                                   'images')

    def extra_repr(self) -> List[str]:
        """Lines added to ``repr(dataset)``."""
        return [
            f'Annotation file: \t{self.ann_file}',
            f'Prefix of images: \t{self.img_prefix}',
            f'Skipped: \t{self.skipped.counts()}',
        ]
