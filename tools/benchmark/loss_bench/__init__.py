"""The machinery of ``tools/benchmark/loss_benchmark.py``, one job a module.

* :mod:`.data` -- Fashion-MNIST and digit arrays, the Fashion-MNIST
  mosaics (the only module that imports the data generators of
  ``tools/misc/``);
* :mod:`.settings` -- the benchmark settings and the compared loss and
  head configs;
* :mod:`.training` -- Runner configs, the cached pretraining and
  fine-tuning runs, linear probes;
* :mod:`.report` -- aggregation, the plot and the markdown block.

Import the submodules (``from tools.benchmark.loss_bench import
settings``); this file imports nothing.
"""
