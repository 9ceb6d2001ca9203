# One virtualenv for everything; `make test` and `make demo` create it on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := var/demo

.PHONY: install test demo bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# Until the server lands (issue 3) the demo is the scoring engine on a synthetic benchmark.
demo: $(STAMP)
	$(VENV)/bin/egomask synth $(DEMO)/gt --scale small --seed 0
	$(VENV)/bin/egomask synth-predict $(DEMO)/gt $(DEMO)/good.zip --quality good --seed 1
	$(VENV)/bin/egomask synth-predict $(DEMO)/gt $(DEMO)/noisy --quality noisy --format png --seed 2
	$(VENV)/bin/egomask validate --pred $(DEMO)/good.zip
	@echo; echo "== good predictions (RLE JSON zip) =="
	$(VENV)/bin/egomask eval --gt $(DEMO)/gt --pred $(DEMO)/good.zip
	@echo; echo "== noisy predictions (PNG folder) =="
	$(VENV)/bin/egomask eval --gt $(DEMO)/gt --pred $(DEMO)/noisy

bench: $(STAMP)
	$(PY) benchmarks/bench_scoring.py --scale full

clean:
	rm -rf $(VENV) var benchmarks/data .pytest_cache .hypothesis
