"""Build a multi-label dataset of real-image mosaics in the MS-COCO layout.

    python tools/misc/make_mosaic_data.py --source fashion-mnist data/fashion
    python tools/misc/make_mosaic_data.py --source digits data/digits

Sources, options and output layout: :mod:`mmtwoway.testing.mosaic_data`.
"""
from mmtwoway.testing.mosaic_data import main

if __name__ == '__main__':
    main()
