# The project's interface. `make dataset` then `make test` on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RAW    ?=
OUT    ?= outputs
DATA   ?= $(OUT)
WORKERS ?=
BENCH_INPUT ?= ../shared/corpus

STAMP := $(VENV)/.installed

.PHONY: dataset test lint notebooks bench validate clean venv

venv: $(STAMP)

# the compiled walk is built at install: a changed .pyx reinstalls
$(STAMP): pyproject.toml setup.py pipeline/_walk.pyx
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

dataset: $(STAMP)
ifeq ($(strip $(RAW)),)
	@echo "No RAW=path given: building the bundled demo posts (pipeline/demo_posts) into $(OUT)/"
	$(PY) -m pipeline build --input pipeline/demo_posts --output $(OUT) $(if $(WORKERS),--workers $(WORKERS))
else
	$(PY) -m pipeline build --input $(RAW) --output $(OUT) $(if $(WORKERS),--workers $(WORKERS))
endif

test: $(STAMP)
	$(PY) -m ruff check pipeline tests scripts
	$(PY) -m pytest -q

validate: $(STAMP)
	$(PY) -m pipeline validate $(OUT)

notebooks: $(STAMP)
	$(PY) -m pipeline.notebooks --data $(DATA)

bench: $(STAMP)
	$(PY) scripts/bench.py --input $(BENCH_INPUT)

clean:
	rm -rf $(OUT) .cache
