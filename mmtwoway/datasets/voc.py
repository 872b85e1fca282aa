"""PASCAL VOC 2007 / 2012 with difficult-only classes handled explicitly."""
import os.path as osp
import xml.etree.ElementTree as ET
from typing import List, Tuple

from mmpretrain.datasets import VOC
from mmpretrain.registry import DATASETS

from .images import check_missing_policy, drop_missing_images
from .partial_labels import PartialLabelMixin
from .skipped import SkippedRecords

_LAYOUT = (
    'Expected the VOCdevkit layout: <data_root> = VOCdevkit/VOC2007 (or '
    'VOC2012) holding Annotations/<id>.xml, JPEGImages/<id>.jpg and '
    'ImageSets/Main/{train,val,trainval,test}.txt (VOC2007 test comes from '
    'the separate test tarball, extracted into the same folder).')

DIFFICULT_AS = ('negative', 'ignore')


@DATASETS.register_module()
class VOCMultiLabel(PartialLabelMixin, VOC):
    """PASCAL VOC as a multi-label dataset, difficult objects configurable.

    mmpretrain's :class:`~mmpretrain.datasets.VOC` reads the VOCdevkit layout
    and puts the classes seen only on "difficult" objects into
    ``gt_label_difficult``. This subclass keeps that and adds:

    * the training treatment of those classes: ``difficult_as='negative'``
      (default, common practice) or ``'ignore'``, which emits mmtwoway's
      ``gt_score`` with -1 for them (see
      :mod:`mmtwoway.datasets.partial_labels`). In evaluation,
      :class:`~mmtwoway.evaluation.MultiLabelMAP` ignores them in either case
      (its ``difficult_as='ignore'``), as long as the test ``PackInputs`` keeps
      ``gt_label_difficult`` in its ``meta_keys``;
    * clear errors instead of mmpretrain's silent skips: an object whose name
      is not a VOC class, a missing or malformed XML file;
    * the missing-image check (``missing_images``).

    Each sample::

        dict(img_path, gt_label=[classes with a non-difficult object],
             gt_label_difficult=[classes with a difficult object])

    and with ``difficult_as='ignore'`` also ``ignored_label`` (the
    difficult-only classes) and, when fetched, ``gt_score`` (1 positive, 0
    negative, -1 difficult-only). Every sample then has a ``gt_score``, as
    mmpretrain's data preprocessor needs.

    Paper setting (Table 6): VOC2007 trainval (5,011) / test (4,952);
    VOC2012 train (5,717) / val (5,823), since VOC2012 test labels are not
    public.

    Bad data: a missing split list or XML file, an XML that does not parse,
    an object without a ``name`` or with a name that is not one of the 20
    classes, a ``difficult`` value that is not an integer: an error naming
    the file. An object without ``<difficult>`` counts as not difficult.
    Missing images follow ``missing_images``.

    Args:
        data_root (str): ``VOCdevkit/VOC2007`` or ``VOCdevkit/VOC2012``.
        split (str): ``'train'``, ``'val'``, ``'trainval'`` or ``'test'``.
            Defaults to ``'trainval'``.
        difficult_as (str): What a difficult-only class is for the loss:
            ``'negative'`` (default) or ``'ignore'``.
        missing_images (str): ``'error'`` (default) or ``'skip'`` (counted
            and logged).
        **kwargs: Other arguments of :class:`mmpretrain.datasets.VOC`
            (``data_prefix``, ``pipeline``, ``test_mode`` ...).

    Examples:
        >>> train = VOCMultiLabel(data_root='data/VOCdevkit/VOC2007',
        ...                       split='trainval', difficult_as='ignore')
    """

    def __init__(self,
                 data_root: str,
                 split: str = 'trainval',
                 difficult_as: str = 'negative',
                 missing_images: str = 'error',
                 **kwargs) -> None:
        if difficult_as not in DIFFICULT_AS:
            raise ValueError(f'VOCMultiLabel: difficult_as must be one of '
                             f'{DIFFICULT_AS}, got {difficult_as!r}')
        self.difficult_as = difficult_as
        self.missing_images = check_missing_policy('VOCMultiLabel',
                                                   missing_images)
        self.skipped = SkippedRecords('VOCMultiLabel')
        super().__init__(data_root=data_root, split=split, **kwargs)

    def _get_labels_from_xml(self, img_id: str) -> Tuple[List[int], List[int]]:
        """Sorted classes of the non-difficult and the difficult objects.

        Args:
            img_id (str): An id of the split list.

        Returns:
            tuple[list[int], list[int]]: ``gt_label`` and
            ``gt_label_difficult``.
        """
        xml_path = self.backend.join_path(self.ann_prefix, f'{img_id}.xml')
        if not self.backend.exists(xml_path):
            raise FileNotFoundError(
                f'VOCMultiLabel: annotation "{xml_path}" of image id '
                f'{img_id!r} (listed in "{self.image_set_path}") not found. '
                f'{_LAYOUT}')
        try:
            root = ET.fromstring(self.backend.get(xml_path))
        except ET.ParseError as err:
            raise ValueError(f'VOCMultiLabel: "{xml_path}" is not valid XML '
                             f'({err}).') from err
        labels, difficult = set(), set()
        for k, obj in enumerate(root.findall('object')):
            name = (obj.findtext('name') or '').strip()
            if name not in self.class_to_idx:
                raise ValueError(
                    f'VOCMultiLabel: object #{k} of "{xml_path}" has the '
                    f'name {name!r}, which is not one of the classes '
                    f'{tuple(self.CLASSES)}.')
            flag = (obj.findtext('difficult') or '0').strip()
            if not flag.lstrip('-').isdigit():
                raise ValueError(
                    f'VOCMultiLabel: object #{k} ({name}) of "{xml_path}" '
                    f'has <difficult>{flag}</difficult>; expected 0 or 1.')
            target = difficult if int(flag) else labels
            target.add(self.class_to_idx[name])
        return sorted(labels), sorted(difficult)

    def load_data_list(self) -> List[dict]:
        """mmpretrain's VOC samples, checked, with the difficult treatment.

        Returns:
            list[dict]: One sample per listed image, in list order.
        """
        if not self.backend.exists(self.image_set_path):
            raise FileNotFoundError(
                f'VOCMultiLabel: split list "{self.image_set_path}" not '
                f'found. {_LAYOUT}')
        data_list = super().load_data_list()
        if self.difficult_as == 'ignore':
            for info in data_list:
                # A class with a non-difficult object stays positive.
                info['ignored_label'] = sorted(
                    set(info['gt_label_difficult'] or ())
                    - set(info['gt_label'] or ()))
        total = len(data_list)
        data_list = drop_missing_images(
            'VOCMultiLabel', data_list, self.missing_images,
            lambda info: f'{osp.basename(info["img_path"])} (listed in '
            f'{self.image_set_path})', f'data_prefix={self.data_prefix!r}. '
            f'{_LAYOUT}', self.skipped)
        return self.skipped.finish(data_list, total, self.image_set_path,
                                   'images')
