# The README's commands. Each target works as the first command on a fresh clone:
# it creates .venv and installs what is missing, then runs.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LINK ?=

.PHONY: demo test lint protos bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/collabdnn demo $(if $(LINK),--link $(LINK),)

test: $(STAMP)
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check .

protos: $(STAMP)
	$(PY) -m collabdnn.proto_gen

# Every benchmark (about 15 minutes on 2 cores; the shaped-link parts need root), then
# the README's tables from benchmarks/results/*.md.
bench: $(STAMP)
	$(VENV)/bin/collabdnn bench
	$(PY) -m benchmarks.bench_codec
	$(PY) -m benchmarks.bench_planner
	$(PY) -m benchmarks.bench_predictor
	$(PY) -m benchmarks.bench_prediction
	$(PY) -m benchmarks.bench_load
	-$(PY) -m benchmarks.bench_link
	-$(PY) -m benchmarks.bench_linkswitch
	$(PY) -m benchmarks.readme_tables

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
