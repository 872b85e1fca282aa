"""``CocoWriter``: MS-COCO instances files for generated datasets."""
import json
import os
import os.path as osp
from typing import List, Sequence

BBox = List[int]  # x, y, width, height


class CocoWriter:
    """Collects images and box annotations into a COCO instances dict.

    Image and annotation ids are assigned consecutively from 1, as in COCO,
    where id 0 does not occur.

    Args:
        categories (Sequence[dict]): COCO categories, each with ``id`` and
            ``name`` (``supercategory`` is added if missing).
    """

    def __init__(self, categories: Sequence[dict]) -> None:
        ids = [c['id'] for c in categories]
        if len(set(ids)) != len(ids):
            raise ValueError(f'duplicate category ids in {ids}')
        self.categories = [
            dict(id=int(c['id']),
                 name=str(c['name']),
                 supercategory=str(c.get('supercategory', c['name'])))
            for c in categories
        ]
        self._cat_ids = set(ids)
        self.images: List[dict] = []
        self.annotations: List[dict] = []

    @property
    def next_image_id(self) -> int:
        """The id the next :meth:`add_image` call will return."""
        return len(self.images) + 1

    def add_image(self, file_name: str, width: int, height: int) -> int:
        """Add an image record and return its id."""
        image_id = self.next_image_id
        self.images.append(
            dict(
                id=image_id,
                file_name=file_name,
                width=int(width),
                height=int(height)))
        return image_id

    def add_annotation(self, image_id: int, category_id: int,
                       bbox: BBox) -> int:
        """Add a (non-crowd, box-only) annotation and return its id."""
        if category_id not in self._cat_ids:
            raise ValueError(f'unknown category id {category_id}')
        x, y, w, h = (int(v) for v in bbox)
        ann_id = len(self.annotations) + 1
        self.annotations.append(
            dict(
                id=ann_id,
                image_id=int(image_id),
                category_id=int(category_id),
                bbox=[x, y, w, h],
                # COCO's area is the mask area; without masks the box's.
                area=w * h,
                iscrowd=0,
                segmentation=[]))
        return ann_id

    def to_dict(self, description: str = '') -> dict:
        """The COCO instances dict (``info``, ``licenses``, ``images``,
        ``annotations``, ``categories``)."""
        return dict(
            info=dict(description=description, version='1.0'),
            licenses=[],
            images=self.images,
            annotations=self.annotations,
            categories=self.categories)

    def dump(self, path: str, description: str = '') -> None:
        """Write the COCO dict to ``path`` (parent folders are created)."""
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(self.to_dict(description), f)
