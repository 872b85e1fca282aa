# `make demo` and `make test` work on a fresh clone: they build .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mmtwoway-installed
export MPLBACKEND := Agg

.PHONY: install demo test test-fast bench clean

install: $(STAMP)

$(STAMP): setup.py requirements/runtime.txt requirements/tests.txt requirements/torch.txt \
		requirements/deploy.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade 'pip>=23'
	$(BIN)/python -m pip install -q -r requirements/torch.txt
	$(BIN)/python -m pip install -q -e '.[tests,deploy]'
	touch $(STAMP)

# A rerun starts afresh: train.py refuses a work dir with another run's
# checkpoints.
demo: $(STAMP)
	$(BIN)/python tools/misc/make_demo_data.py data/demo
	rm -rf work_dirs/twoway_demo
	$(BIN)/python tools/train.py configs/twoway_demo.py --work-dir work_dirs/twoway_demo

test: $(STAMP)
	$(BIN)/python -m pytest tests

# Everything but the tests marked slow (subprocesses, DDP, benchmarks, demo
# training, large backbones), on 2 worker processes: about 80 s on 2 cores.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -m 'not slow' -n 2

bench: $(STAMP)
	$(BIN)/python tools/benchmark/bench_loss.py
	$(BIN)/python tools/benchmark/bench_metric.py

clean:
	rm -rf $(VENV) work_dirs data/demo

# Fashion-MNIST (Debian's dataset-fashion-mnist, IDX files under
# /usr/share/datasets/fashion-mnist) for tools/benchmark/loss_benchmark.py
# and make_mosaic_data.py --source fashion-mnist; the tests that need the
# real files skip without it.
.PHONY: bench-data
bench-data:
	test -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz || \
		{ apt-get update && apt-get install -y dataset-fashion-mnist; }
