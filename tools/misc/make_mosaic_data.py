"""Build a multi-label dataset of real-image mosaics in the MS-COCO layout.

    python tools/misc/make_mosaic_data.py --source fashion-mnist data/fashion
    python tools/misc/make_mosaic_data.py --source digits data/digits

Sources, options and output layout: :mod:`tools.misc.mosaic_data`.
"""
import os.path as osp
import sys
# Run as a script: put the repository root on the path for ``tools``.
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
from tools.misc.mosaic_data import main  # noqa: E402

if __name__ == '__main__':
    main()
