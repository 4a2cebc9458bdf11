# The README's commands. Each target works as the first command on a fresh clone:
# it creates .venv and installs what is missing, then runs.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LINK ?=
# pytest exits 5 when it collected no tests: that is not a failure of the suite.
PYTEST = $(PY) -m pytest $(1); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc

.PHONY: demo test test-fast compose-test lint format protos bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/collabdnn demo $(if $(LINK),--link $(LINK),)

# Everything CI runs: lint (format, ruff, mypy), then every test (slow and root ones too)
# but the Docker ones (make compose-test).
test: lint
	$(call PYTEST,-m "not docker")

# tests/unit/ less its slow tests: no service processes, no sockets beyond in-process
# servers; well under a minute. (tests/integration/ and tests/system/ run in make test.)
test-fast: $(STAMP)
	$(call PYTEST,-m "unit and not slow" -q)

# tests/docker/ on a real Docker engine: build the image, run the Compose stack, shape,
# scale, kill a replica, tear down (minutes; skipped, with the reason, with no engine).
# COLLABDNN_DOCKER_BUILD_FLAGS adds flags to docker build (docs/compose.md).
compose-test: $(STAMP)
	$(call PYTEST,-m docker -v -s -rs)

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

protos: $(STAMP)
	$(PY) -m collabdnn.wire.proto_gen

# Every benchmark (about 25 minutes on 2 cores; the shaped-link parts need root), then
# the tables in docs/ from benchmarks/results/*.md.
bench: $(STAMP)
	$(VENV)/bin/collabdnn bench
	$(PY) -m benchmarks.bench_codec
	$(PY) -m benchmarks.bench_codec_choice
	$(PY) -m benchmarks.bench_first_hop
	$(PY) -m benchmarks.bench_decode_memory
	$(PY) -m benchmarks.bench_planner
	$(PY) -m benchmarks.bench_predictor
	$(PY) -m benchmarks.bench_prediction
	$(PY) -m benchmarks.bench_load
	$(PY) -m benchmarks.bench_refusals
	$(PY) -m benchmarks.bench_fallback
	$(PY) -m benchmarks.bench_startup
	$(PY) -m benchmarks.bench_batching
	-$(PY) -m benchmarks.bench_fleet
	$(PY) -m benchmarks.bench_hop --raw
	-$(PY) -m benchmarks.bench_throttle
	-$(PY) -m benchmarks.bench_quota
	$(PY) -m benchmarks.bench_hung_cloud --baseline
	-$(PY) -m benchmarks.bench_link
	-$(PY) -m benchmarks.bench_linkswitch
	$(PY) -m benchmarks.bench_idle_drop --part contention
	-$(PY) -m benchmarks.bench_idle_drop --part idle
	$(PY) -m benchmarks.bench_training
	$(PY) -m benchmarks.doc_tables

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
