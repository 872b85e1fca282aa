"""Installation script of mmtwoway, the Two-way Multi-Label Loss plugin."""
from importlib import metadata
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_requirements(name: str) -> list:
    """Non-comment lines of ``requirements/<name>.txt``."""
    lines = (HERE / 'requirements' / f'{name}.txt').read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith('#')]


def mmcv_requirement() -> str:
    """Require the mmcv flavour that is already installed, else mmcv-lite.

    mmcv (with compiled ops) and mmcv-lite provide the same ``mmcv`` module.
    A user who already has full mmcv must keep it: asking for mmcv-lite
    would install a second copy over it and clobber the compiled ops.
    """
    try:
        metadata.distribution('mmcv')
        return 'mmcv>=2.0.0,<2.2.0'
    except metadata.PackageNotFoundError:
        return 'mmcv-lite>=2.0.0,<2.2.0'


version = {}
exec((HERE / 'mmtwoway' / 'version.py').read_text(), version)

setup(
    name='mmtwoway',
    version=version['__version__'],
    description='Two-way Multi-Label Loss (Kobayashi, CVPR 2023) for '
    'MMPretrain',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.8',
    packages=find_packages(include=['mmtwoway', 'mmtwoway.*']),
    # Outside the package: it must be importable before mmtwoway's
    # __init__ imports mmpretrain.models (docs/stack_fixes.md).
    py_modules=['mmtwoway_stack_fixes'],
    install_requires=read_requirements('runtime') + [
        mmcv_requirement(), 'torch>=1.13', 'torchvision'
    ],
    extras_require={
        'tests': read_requirements('tests'),
        # ONNX export and onnxruntime inference (tools/deployment/).
        'deploy': read_requirements('deploy'),
    },
    zip_safe=False,
)
