"""Training pipelines to compare (bench_pipeline.py, gpu_check.py): the
authors' torchvision pipeline, mmtwoway's previous cv2 pipeline and
mmpretrain's stock ImageNet pipeline, and datasets that run them."""
import copy
from typing import Callable, List, Sequence

import torch
from mmpretrain.registry import DATASETS
from PIL import Image

# The authors' AlexNet PCA lighting: ImageNet RGB eigen-decomposition of
# [0, 1] pixels.
EIGVAL = (0.2175, 0.0188, 0.0045)
EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140),
          (-0.5836, -0.6948, 0.4203))

# mmtwoway's train pipeline before the decode-and-crop transforms: cv2
# decoding of the whole image and the photometric work on the CPU.
OLD_TRAIN_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.08, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='PILToNumpy', dtype='float32'),
    dict(type='Lighting', eigval=[55.4625, 4.7940, 1.1475],
         eigvec=[[-0.5836, -0.6948, 0.4203], [-0.5808, -0.0045, -0.8140],
                 [-0.5675, 0.7192, 0.4009]], alphastd=0.1, to_rgb=False),
    dict(type='PackInputs'),
]

# mmpretrain 1.2's configs/_base_/datasets/imagenet_bs32.py train pipeline.
MMPRETRAIN_IMAGENET_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]


class AuthorsLighting:
    """PCA lighting as the authors' code adds it to a float [0, 1] tensor."""

    def __init__(self, alphastd: float = 0.1) -> None:
        self.alphastd = alphastd
        self.eigval = torch.tensor(EIGVAL)
        self.eigvec = torch.tensor(EIGVEC)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        alpha = img.new_empty(3).normal_(0, self.alphastd)
        rgb = (self.eigvec * alpha.view(1, 3) *
               self.eigval.view(1, 3)).sum(1)
        return img.add(rgb.view(3, 1, 1).expand_as(img))


def authors_transform(size: int = 224) -> Callable:
    """The authors' train transform: RandomResizedCrop, flip, ColorJitter
    (0.4, 0.4, 0.4), ToTensor, PCA lighting (0.1), ImageNet Normalize."""
    from torchvision import transforms as T
    return T.Compose([
        T.RandomResizedCrop(size),
        T.RandomHorizontalFlip(),
        T.ColorJitter(0.4, 0.4, 0.4),
        T.ToTensor(),
        AuthorsLighting(0.1),
        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])


def pil_loader(path: str) -> Image.Image:
    """torchvision's ImageFolder loader: Pillow, converted to RGB."""
    with open(path, 'rb') as f:
        img = Image.open(f)
        return img.convert('RGB')


def coco_dataset(data_root: str, pipeline: Sequence[dict],
                 split: str = 'train2014'):
    """mmtwoway's ``CocoMultiLabel`` on a COCO-layout folder."""
    return DATASETS.build(
        dict(type='CocoMultiLabel', data_root=data_root,
             ann_file=f'annotations/instances_{split}.json',
             data_prefix=dict(img_path=split),
             pipeline=copy.deepcopy(list(pipeline))))


class AuthorsDataset(torch.utils.data.Dataset):
    """The images and multi-hot labels of a ``CocoMultiLabel`` dataset,
    loaded and augmented as the authors' code does: ``(image, target)``."""

    def __init__(self, data_root: str, size: int = 224,
                 split: str = 'train2014') -> None:
        coco = coco_dataset(data_root, [], split)
        self.num_classes = len(coco.metainfo['classes'])
        self.items: List[tuple] = [
            (info['img_path'], info['gt_label'])
            for info in (coco.get_data_info(i) for i in range(len(coco)))
        ]
        self.transform = authors_transform(size)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int):
        path, labels = self.items[idx]
        target = torch.zeros(self.num_classes)
        target[list(labels)] = 1
        return self.transform(pil_loader(path)), target

