# One virtualenv for everything (the server and the test tools); `make test` and `make demo` create it on a
# fresh machine. A participant needs only the base install: pip install egomask.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH ?= torch==2.13.0
DEMO := var/demo

.PHONY: install test demo bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch before anything that depends on it (the [runners] extra): any looser spec, resolved
	# before torch is present, would fetch a CUDA build of several GB. TORCH=... to pick another build.
	$(PY) -m pip install --quiet '$(TORCH)'
	$(PY) -m pip install --quiet -e '.[server,dev,runners]'
	# The stock evalai CLI (compatibility tests): its pinned dependencies do not build on Python 3.11,
	# so it goes in without them, plus current versions of what it imports.
	$(PY) -m pip install --quiet --no-deps evalai==1.3.18
	$(PY) -m pip install --quiet beautifulsoup4 lxml beautifultable==0.7.0 termcolor==1.1.0 validators==0.12.6 tqdm docker
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# The embedded demo (SQLite, ./var, a real Celery worker on kombu's filesystem transport): seed it
# (idempotent), then run the web server and the worker until Ctrl-C. PORT=8001 make demo to move it.
PORT ?= 8000

demo: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) scripts/demo.py --port $(PORT)

bench: $(STAMP)
	$(PY) benchmarks/bench_scoring.py --scale full --profile

clean:
	rm -rf $(VENV) var benchmarks/data .pytest_cache .hypothesis
