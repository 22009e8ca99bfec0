# Two entry points, both self-contained on a fresh machine:
#   make demo   set up, then run the main job on the embedded default data
#   make test   set up, then run the test suite (make test-fast: without the tests marked slow)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[test,digits,report]'
	# mindcv, the foreign MindSpore zoo the diagnosis tests run against: its declared dependencies would
	# replace MindSpore and NumPy, and pip extras cannot say --no-deps
	$(BIN)/pip install --quiet --no-deps mindcv==0.3.0
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/msport reproduce --config configs/reproduce_digits.yaml

# Two pytest workers, one per core of the 2-core machines we test on; set TEST_WORKERS=0 to run serially.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check msport reference_torch tests bench examples train_torch.py train_ms.py

bench: $(STAMP)
	$(BIN)/python bench/train_step.py

clean:
	rm -rf $(VENV) *.egg-info
