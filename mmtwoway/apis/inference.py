"""Label sets of image files, with the config's test pipeline."""
import sys
from typing import Dict, List, Sequence, Tuple

import torch
from mmengine.model import BaseModel

from mmtwoway.datasets.transforms.loading import ImageReadError, read_image
from .model import model_classes

# Images decoded and handed to the inferencer at a time, in batches.
_BATCHES_PER_CHUNK = 8


def predict_readable(model: BaseModel,
                     images: Sequence[str],
                     batch_size: int = 8
                     ) -> Tuple[List[Dict], List[ImageReadError]]:
    """Predict every image that can be read; report the others.

    The images run through the config's test pipeline (that of mmpretrain's
    ``ImageClassificationInferencer``) and ``model.test_step``; the labels
    are the ``pred_label`` of the model's head, i.e. its decision. Each
    file is decoded first, the same way as the datasets'
    ``LoadImageFromFile``, so that an unreadable one (empty, truncated, not
    an image) is set aside with the reason instead of ending the run.
    Images of different sizes after the pipeline (one without a fixed-size
    crop or resize, like the demo's) go in separate batches, as the
    network takes them, and the scores of a batch reach the host in one
    copy.

    Args:
        model (BaseModel): A model from :func:`~mmtwoway.apis.load_model`.
        images (Sequence[str]): Image file paths.
        batch_size (int): Images per forward pass (>= 1).

    Returns:
        tuple: per readable image, in order, a dict with ``image`` (the
        path), ``labels`` (class names, highest score first),
        ``label_indices``, ``label_scores`` and ``scores`` (all C class
        scores); and the errors of the unreadable images, in order.

    Raises:
        ValueError: ``batch_size`` below 1.
        FileNotFoundError: An image does not exist.
    """
    import rich.progress
    from mmengine.dataset import default_collate
    from mmpretrain.apis import ImageClassificationInferencer

    if isinstance(batch_size, bool) or not isinstance(
            batch_size, int) or batch_size < 1:
        raise ValueError(f'batch_size must be an int >= 1, got {batch_size!r}')
    classes = model_classes(model)
    # Only its test pipeline is used (LoadImageFromFile removed).
    pipeline = ImageClassificationInferencer(
        model=model, classes=classes).pipeline
    results: Dict[int, Dict] = {}
    unreadable: List[ImageReadError] = []
    chunk = batch_size * _BATCHES_PER_CHUNK
    starts = range(0, len(images), chunk)
    # A progress bar is for terminals: written to a pipe or a file it
    # leaves no line break and the next output line is glued to it.
    if sys.stdout.isatty() and len(starts) > 1:
        starts = rich.progress.track(starts, 'Predicting')
    for start in starts:
        by_shape: Dict[tuple, List[Tuple[int, dict]]] = {}
        for i in range(start, min(start + chunk, len(images))):
            try:
                img = read_image(images[i])
            except ImageReadError as err:
                unreadable.append(err)
                continue
            packed = pipeline(
                dict(img=img, img_shape=img.shape[:2],
                     ori_shape=img.shape[:2]))
            by_shape.setdefault(tuple(packed['inputs'].shape),
                                []).append((i, packed))
        for group in by_shape.values():
            for first in range(0, len(group), batch_size):
                batch = group[first:first + batch_size]
                with torch.no_grad():
                    samples = model.test_step(
                        default_collate([packed for _, packed in batch]))
                # One device-to-host copy per batch (the head's labels are
                # already on the host).
                scores = torch.stack([s.pred_score for s in samples]).float()
                scores = scores.cpu()
                for (i, _), sample, row in zip(batch, samples, scores):
                    results[i] = prediction(images[i], row,
                                            sample.pred_label.tolist(),
                                            classes)
    return [results[i] for i in sorted(results)], unreadable


def predict_images(model: BaseModel,
                   images: Sequence[str],
                   batch_size: int = 8) -> List[Dict]:
    """Each image's decided labels and all its class scores.

    As :func:`predict_readable`, but an unreadable image is an error.

    Args:
        model (BaseModel): A model from :func:`~mmtwoway.apis.load_model`.
        images (Sequence[str]): Image file paths.
        batch_size (int): Images per forward pass.

    Returns:
        list[dict]: per image, as :func:`predict_readable` gives them.

    Raises:
        FileNotFoundError, ValueError: An image is missing or cannot be
            decoded (the message names it), or ``batch_size`` is below 1.
    """
    results, unreadable = predict_readable(model, images, batch_size)
    if unreadable:
        raise unreadable[0]
    return results


def prediction(image: str, scores: torch.Tensor, label_indices: List[int],
               classes: Sequence[str]) -> Dict:
    """One image's result, as :func:`predict_images` (and the ONNX path of
    ``tools/predict.py``) return it.

    Args:
        image (str): The image path.
        scores (torch.Tensor): Its (C, ) class scores.
        label_indices (List[int]): The decided classes.
        classes (Sequence[str]): The C class names.

    Returns:
        dict: ``image``, ``labels`` (names, highest score first),
        ``label_indices``, ``label_scores`` and ``scores`` (all C).
    """
    values = torch.as_tensor(scores).float().cpu().tolist()
    labels = sorted(label_indices, key=lambda c: -values[c])
    return dict(
        image=image,
        labels=[classes[c] for c in labels],
        label_indices=labels,
        label_scores=[values[c] for c in labels],
        scores=values)
