"""Label sets of image files, through mmpretrain's own inferencer."""
import sys
from typing import Dict, List, Sequence

import torch
from mmengine.model import BaseModel

from .model import model_classes


def predict_images(model: BaseModel,
                   images: Sequence[str],
                   batch_size: int = 8) -> List[Dict]:
    """Each image's decided labels and all its class scores.

    The images run through mmpretrain's ``ImageClassificationInferencer``
    (the config's test pipeline, a progress bar); the labels are the
    ``pred_label`` of the model's head, i.e. its decision.

    Args:
        model: A model from :func:`~mmtwoway.apis.load_model`.
        images: Image file paths.
        batch_size: Images per forward pass.

    Returns:
        list[dict]: per image, ``image`` (the path), ``labels`` (class
        names, highest score first), ``label_indices``, ``label_scores``
        and ``scores`` (all C class scores).

    Raises:
        FileNotFoundError, ValueError: An image is missing or cannot be
            decoded (the message names it).
    """
    from mmpretrain.apis import ImageClassificationInferencer
    from mmpretrain.utils import progress

    classes = model_classes(model)
    inferencer = ImageClassificationInferencer(model=model, classes=classes)
    # mmpretrain's rich progress bar is for terminals: written to a pipe or
    # a file it leaves no line break, and the next output line is glued to
    # it, so it is switched off there.
    shown = progress.disable_progress_bar
    progress.disable_progress_bar = shown or not sys.stdout.isatty()
    try:
        samples = inferencer(list(images), return_datasamples=True,
                             batch_size=batch_size)
    finally:
        progress.disable_progress_bar = shown
    return [
        prediction(path, sample.pred_score, sample.pred_label.tolist(),
                   classes) for path, sample in zip(images, samples)
    ]


def prediction(image: str, scores: torch.Tensor, label_indices: List[int],
               classes: Sequence[str]) -> Dict:
    """One image's result, as :func:`predict_images` (and the ONNX path of
    ``tools/predict.py``) return it.

    Args:
        image: The image path.
        scores: Its (C, ) class scores.
        label_indices: The decided classes.
        classes: The C class names.

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
