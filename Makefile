# Two entry points, both self-contained on a fresh machine:
#   make demo   set up, then run the main job on the embedded default data
#   make test   set up, then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[test,digits,report]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/msport reproduce --config configs/reproduce_digits.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/train_step.py

clean:
	rm -rf $(VENV) *.egg-info
