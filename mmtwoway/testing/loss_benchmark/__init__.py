"""The machinery of ``tools/benchmark/loss_benchmark.py``, one job a module.

* :mod:`.data` -- Fashion-MNIST and digit arrays, the Fashion-MNIST
  mosaics (the only module that imports mmtwoway's data generators);
* :mod:`.settings` -- the benchmark settings and the compared loss and
  head configs;
* :mod:`.training` -- Runner configs, the cached pretraining and
  fine-tuning runs, linear probes;
* :mod:`.report` -- aggregation, the plot and the markdown block.

Import the submodules (``from mmtwoway.testing.loss_benchmark import
settings``); this file imports nothing.
"""
