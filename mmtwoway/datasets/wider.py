"""WIDER Attribute (Li et al., ECCV 2016)."""
import os.path as osp
from typing import List, Optional, Sequence, Union

from mmengine.fileio import join_path
from mmpretrain.registry import DATASETS

from .annotations import check_classes, load_json, parse_box
from .instance import InstanceDataset
from .transforms.crop_instance import xywh_to_xyxy

_LAYOUT = (
    'Expected the WIDER Attribute layout: <data_root>/'
    'wider_attribute_trainval.json and <data_root>/wider_attribute_test.json '
    '(from wider_attribute_annotation.zip) and the images under '
    '<data_root>/Image/{train,val,test}/<scene>/ (the json\'s "file_name" is '
    'relative to Image/); set `ann_file` and `data_prefix` relative to '
    '`data_root`.')

# The first folder of a "file_name": which split the image belongs to. The
# trainval file holds train and val images, told apart only by it.
SPLITS = ('train', 'val', 'test')

# Attribute value -> meaning.
_POSITIVE, _NEGATIVE, _UNSPECIFIED = 1, -1, 0


@DATASETS.register_module()
class WIDERAttribute(InstanceDataset):
    """WIDER Attribute person boxes as a partially labelled dataset.

    14 binary attributes of the people in WIDER images, read from
    ``wider_attribute_trainval.json`` / ``wider_attribute_test.json`` (from
    ``wider_attribute_annotation.zip``) as published. Each person box is one
    sample: its attribute values 1 / -1 / 0 become positive / negative /
    ignored.

    Classes are the names of the file's ``attribute_id_map`` in index order
    (Male, longHair, sunglass, Hat, Tshiirt, longSleeve, formal, shorts,
    jeans, longPants, skirt, faceMask, logo, stripe; ``Tshiirt`` is the
    file's spelling). Each person box is one sample::

        dict(img_path, instance_bbox=[x1, y1, x2, y2], gt_label=[value 1],
             neg_label=[value -1], img_id=<file_name>, box_index, ann_file)

    plus, when fetched, ``gt_score`` with -1 (ignored) for the attributes
    whose value is 0 (unspecified). Put
    :class:`~mmtwoway.datasets.transforms.CropInstance` right after
    ``LoadImageFromFile`` to train on the person crop.

    **Box rule** (see :class:`~mmtwoway.datasets.instance.InstanceDataset`):
    a box is kept when at least ``min_box_size`` (1) pixel of its width and
    of its height lies inside the image; degenerate boxes (width or height
    <= 0) and boxes wholly outside the image are skipped, counted and logged
    with their file, image and box index. Boxes partly outside (some start
    at negative coordinates) are kept and clipped when cropped. The
    official files have 28,345 trainval / 29,179 test boxes, the paper's
    Table 6 28,340 / 29,117; the number this rule drops is in the log and
    in ``tools/misc/dataset_stats.py``'s report.

    Bad data: an unreadable or malformed file, an image without
    ``file_name`` or ``targets``, a ``file_name`` outside
    ``train/ val/ test/``, a box that is not four numbers, an attribute list
    of the wrong length or a value other than 1, -1, 0: ``ValueError``
    naming the file, the image and the box index. Missing images follow
    ``missing_images``.

    Args:
        data_root (str): Root that the other paths are relative to.
            Defaults to ''.
        ann_file (str | Sequence[str]): Annotation file(s). Defaults to
            ``'wider_attribute_trainval.json'``.
        split (str, optional): Keep only the images whose ``file_name``
            starts with ``'train'``, ``'val'`` or ``'test'``; None (default)
            keeps every image of the file(s).
        data_prefix (str | dict): The image folder that ``file_name`` is
            relative to. Defaults to ``dict(img_path='Image')``.
        missing_images (str): ``'error'`` (default) or ``'skip'``.
        min_box_size (float): See the box rule. Defaults to 1 px.
        cache (bool | str): Where image sizes are cached (True: under
            ``data_root``).
        **kwargs: Other arguments of
            :class:`mmpretrain.datasets.MultiLabelDataset`.

    Examples:
        >>> train = WIDERAttribute(data_root='data/wider')
        >>> test = WIDERAttribute(
        ...     data_root='data/wider',
        ...     ann_file='wider_attribute_test.json', test_mode=True)
    """

    def __init__(self,
                 data_root: str = '',
                 ann_file: Union[
                     str, Sequence[str]] = 'wider_attribute_trainval.json',
                 split: Optional[str] = None,
                 data_prefix: Union[str, dict] = dict(img_path='Image'),
                 missing_images: str = 'error',
                 min_box_size: float = 1.0,
                 cache: Union[bool, str] = True,
                 **kwargs) -> None:
        if split is not None and split not in SPLITS:
            raise ValueError(f'WIDERAttribute: split must be None or one of '
                             f'{SPLITS}, got {split!r}')
        self.split = split
        super().__init__(
            ann_file=ann_file,
            missing_images=missing_images,
            min_box_size=min_box_size,
            cache=cache,
            data_root=data_root,
            data_prefix=data_prefix,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read the person boxes of the annotation file(s).

        Returns:
            list[dict]: One sample per kept box, in file order.
        """
        names = None
        data_list = []
        for path in self.ann_files:
            data = load_json(path, 'WIDERAttribute', _LAYOUT)
            if not isinstance(data, dict) or not isinstance(
                    data.get('images'), list):
                raise ValueError(
                    f'WIDERAttribute: "{path}" must be an object with a '
                    '"images" list (and "attribute_id_map").')
            file_names = _class_names(data, path)
            if names is not None and file_names != names:
                raise ValueError(
                    f'WIDERAttribute: the attribute_id_map of "{path}" '
                    f'differs from that of "{self.ann_files[0]}".')
            names = file_names
            for image in data['images']:
                data_list.extend(self._boxes(image, path, len(names)))
        check_classes('WIDERAttribute', self._metainfo.get('classes'), names,
                      self.ann_files[0])
        self._metainfo['classes'] = tuple(names)
        return self.finish(data_list, _describe,
                           f'data_prefix={self.img_prefix!r}. {_LAYOUT}')

    def _boxes(self, image, path: str, num_classes: int) -> List[dict]:
        """The samples of one image record (none if not in ``split``)."""
        if not isinstance(image, dict) or not isinstance(
                image.get('file_name'), str) or not isinstance(
                    image.get('targets'), list):
            raise ValueError(
                f'WIDERAttribute: "{path}" has an image record without a '
                f'"file_name" string or a "targets" list: {str(image)[:200]}')
        file_name = image['file_name']
        prefix = file_name.split('/', 1)[0]
        if prefix not in SPLITS:
            raise ValueError(
                f'WIDERAttribute: "{path}", image "{file_name}": file_name '
                f'must start with one of {SPLITS} followed by "/".')
        if self.split is not None and prefix != self.split:
            return []
        samples = []
        for k, target in enumerate(image['targets']):

            def where(k=k) -> str:
                return (f'WIDERAttribute: "{path}", image "{file_name}", '
                        f'target #{k}')

            if not isinstance(target, dict) or not {'attribute', 'bbox'
                                                    } <= set(target):
                raise ValueError(f'{where()} is not an object with '
                                 '"attribute" and "bbox".')
            values = target['attribute']
            if not isinstance(values, list) or len(values) != num_classes:
                raise ValueError(
                    f'{where()}: "attribute" must be a list of '
                    f'{num_classes} values (one per attribute_id_map '
                    f'entry), got {values!r}.')
            bad = [(i, v) for i, v in enumerate(values)
                   if isinstance(v, bool) or v not in (_POSITIVE, _NEGATIVE,
                                                       _UNSPECIFIED)]
            if bad:
                raise ValueError(
                    f'{where()}: attribute values must be 1 (positive), -1 '
                    f'(negative) or 0 (unspecified); got (index, value) '
                    f'{bad}.')
            samples.append(
                dict(
                    img_path=join_path(self.img_prefix, file_name),
                    instance_bbox=xywh_to_xyxy(
                        parse_box(target['bbox'], where)),
                    gt_label=[
                        i for i, v in enumerate(values) if v == _POSITIVE
                    ],
                    neg_label=[
                        i for i, v in enumerate(values) if v == _NEGATIVE
                    ],
                    img_id=file_name,
                    box_index=k,
                    ann_file=path))
        return samples


def _class_names(data: dict, path: str) -> List[str]:
    """The attribute names of ``attribute_id_map``, by index."""
    id_map = data.get('attribute_id_map')
    if not isinstance(id_map, dict) or not id_map:
        raise ValueError(f'WIDERAttribute: "{path}" has no '
                         '"attribute_id_map" object {"0": "Male", ...}.')
    expected = {str(i) for i in range(len(id_map))}
    if set(map(str, id_map)) != expected:
        raise ValueError(
            f'WIDERAttribute: the keys of "attribute_id_map" in "{path}" '
            f'must be "0".."{len(id_map) - 1}", got {sorted(id_map)}.')
    by_key = {str(k): v for k, v in id_map.items()}
    return [by_key[str(i)] for i in range(len(id_map))]


def _describe(info: dict) -> str:
    """File and record of a WIDER Attribute sample."""
    return (f'{osp.basename(info["ann_file"])}: image "{info["img_id"]}", '
            f'target #{info["box_index"]}')
