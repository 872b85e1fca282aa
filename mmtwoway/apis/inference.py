"""Label sets of image files, through mmpretrain's own inferencer."""
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

    The images run through mmpretrain's ``ImageClassificationInferencer``
    (the config's test pipeline); the labels are the ``pred_label`` of the
    model's head, i.e. its decision. Each file is decoded first, the same
    way as the datasets' ``LoadImageFromFile``, so that an unreadable one
    (empty, truncated, not an image) is set aside with the reason instead
    of ending the run.

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
    from mmpretrain.apis import ImageClassificationInferencer
    from mmpretrain.utils import progress

    if isinstance(batch_size, bool) or not isinstance(
            batch_size, int) or batch_size < 1:
        raise ValueError(f'batch_size must be an int >= 1, got {batch_size!r}')
    classes = model_classes(model)
    inferencer = ImageClassificationInferencer(model=model, classes=classes)
    results: List[Dict] = []
    unreadable: List[ImageReadError] = []
    chunk = batch_size * _BATCHES_PER_CHUNK
    starts = range(0, len(images), chunk)
    # mmpretrain's rich progress bars are for terminals: written to a pipe
    # or a file they leave no line break, and the next output line is
    # glued to them. One bar over the chunks, none per inferencer call.
    shown = progress.disable_progress_bar
    if sys.stdout.isatty() and not shown and len(starts) > 1:
        starts = rich.progress.track(starts, 'Predicting')
    try:
        progress.disable_progress_bar = True
        for start in starts:
            paths, arrays = [], []
            for path in images[start:start + chunk]:
                try:
                    arrays.append(read_image(path))
                except ImageReadError as err:
                    unreadable.append(err)
                    continue
                paths.append(path)
            if not arrays:
                continue
            samples = inferencer(arrays, return_datasamples=True,
                                 batch_size=batch_size)
            results.extend(
                _result(path, sample, classes)
                for path, sample in zip(paths, samples))
    finally:
        progress.disable_progress_bar = shown
    return results, unreadable


def _result(path: str, sample, classes: Sequence[str]) -> Dict:
    """One image's prediction as a plain dict (see :func:`prediction`)."""
    return prediction(path, sample.pred_score, sample.pred_label.tolist(),
                      classes)


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
    scores = torch.as_tensor(scores).float().cpu()
    labels = sorted(label_indices, key=lambda c: -float(scores[c]))
    return dict(
        image=image,
        labels=[classes[c] for c in labels],
        label_indices=labels,
        label_scores=[float(scores[c]) for c in labels],
        scores=scores.tolist())
