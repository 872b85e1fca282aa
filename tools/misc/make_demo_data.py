"""Build a small multi-label demo dataset in the MS-COCO layout.

The digits shortcut of ``tools/misc/make_mosaic_data.py``
(:func:`tools.misc.mosaic_data.demo_main`): each image is a
black canvas with 1..``--max-items`` handwritten digits from scikit-learn's
bundled ``load_digits`` (1797 real 8x8 scans, no download), upscaled and
placed without overlap; its labels are the digits it shows. Digit classes
are drawn with geometrically decaying probabilities (digit 0 the most
frequent, digit 9 ``--imbalance`` times rarer), so the positive/negative
imbalance that the Two-way loss addresses is real.

Output, read by ``CocoMultiLabel`` like COCO 2014::

    OUT_DIR/annotations/instances_train.json   (data_prefix 'train')
    OUT_DIR/annotations/instances_val.json     (data_prefix 'val')
    OUT_DIR/train/train_000001.png ...
    OUT_DIR/val/val_000001.png ...

The 10 categories are named 'zero'..'nine' and have non-contiguous ids
(``DIGIT_CATEGORY_IDS``), like COCO's 1..90 for 80 classes, so the id ->
class index mapping is exercised; class index = digit. Train canvases use
only digits of a fixed train part of the 1797 scans and val canvases only
the held-out part. The same arguments give byte-identical files.

Usage::

    python tools/misc/make_demo_data.py data/demo [--num-train 1200]
"""
import os.path as osp
import sys
# Run as a script: put the repository root on the path for ``tools``.
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
from tools.misc.mosaic_data import demo_main as main  # noqa: E402

if __name__ == '__main__':
    main()
