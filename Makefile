# Two commands on a fresh machine: `make test` and `make run`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# GPU users: make TORCH="torch --index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.13.0
EXTRAS ?= dev,postgres,export
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= offline

.PHONY: install test test-fast run demo lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

test: install
	$(PY) -m pytest -q -m "not cuda" --timeout 900

test-fast: install
	$(PY) -m pytest -q -m "not slow and not cuda"

# The main job: tune SP on both tracr tasks (a few minutes on 2 CPU cores).
run: install
	$(VENV)/bin/harness run studies/sp-tracr-reverse.yaml --no-progress
	$(VENV)/bin/harness run studies/sp-tracr-proportion.yaml --no-progress

demo: install
	$(VENV)/bin/harness demo

lint: install
	$(VENV)/bin/ruff check harness tests bench
	$(VENV)/bin/ruff format --check harness tests bench

bench: install
	$(PY) bench/sp_speed.py

clean:
	rm -rf $(VENV) .pytest_cache
