# Two commands on a fresh machine: `make test` and `make run` (both `install`: the venv, and
# Debian's chromium for static figures where root and apt-get allow).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# GPU users: make TORCH="torch --index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.13.0
EXTRAS ?= dev,postgres,export
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= offline

.PHONY: install browser test test-slow test-all run demo lint bench clean

install: $(VENV)/.installed browser

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

# Static figures (PDF/SVG/PNG) need a Chrome or Chromium that kaleido finds. None found: as
# root with apt-get, install Debian's chromium (about 30 s, once); else one line on how, and
# reports get HTML and JSON figures only (the static-figure tests skip, saying why).
browser: $(VENV)/.installed
	@if $(PY) -m harness.reporting.static_export --find >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for static figures (PDF/SVG/PNG)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
			>/dev/null) || echo "warning: could not install chromium with apt-get:" \
			"figures will be HTML and JSON only and static-figure tests skip" >&2; \
	else \
		echo "note: no Chrome/Chromium found: figures will be HTML and JSON only and" \
			"static-figure tests skip; for PDF/SVG/PNG: sudo apt-get install chromium," \
			"or set BROWSER_PATH" >&2; \
	fi

# One pytest worker per core (test files stay whole on a worker, so module fixtures build once).
# `make test`: the suite (real runs of more than a few seconds are marked slow and left to
# `make test-slow`, which CI runs too); `make test-all`: both.
JOBS ?= auto
PYTEST := $(PY) -m pytest -q --timeout 900 -n $(JOBS) --dist loadfile --durations=15
test: install
	$(PYTEST) -m "not slow and not cuda"

test-slow: install
	$(PYTEST) -m "slow and not cuda"

test-all: install
	$(PYTEST) -m "not cuda"

# The main job: tune SP without ground truth on half of the tracr suite and score it on the
# other half against the reference's defaults, ACDC, EAP and random (minutes on 2 CPU cores).
run: install
	$(VENV)/bin/harness --threads 1 transfer studies/transfer-tracr.yaml --no-progress

# Rerun (resume) the tracr studies and the comparison, then one report of all four.
.PHONY: report
report: install
	$(VENV)/bin/harness run studies/sp-tracr-reverse.yaml --no-progress
	$(VENV)/bin/harness run studies/sp-tracr-proportion.yaml --no-progress
	$(VENV)/bin/harness run studies/sp-tracr-reverse-unsupervised.yaml --no-progress
	$(VENV)/bin/harness compare studies/compare-tracr.yaml --no-progress
	$(VENV)/bin/harness report studies/sp-tracr-reverse.yaml studies/sp-tracr-proportion.yaml \
		studies/sp-tracr-reverse-unsupervised.yaml studies/compare-tracr.yaml --out reports/tracr

demo: install
	$(VENV)/bin/harness demo

lint: install
	$(VENV)/bin/ruff check harness tests bench
	$(VENV)/bin/ruff format --check harness tests bench

bench: install
	$(PY) bench/sp_speed.py

# auto-circuit 1.0.1 in its own venv (it imports only with transformer-lens 2.x), for
# bench/compare_autocircuit.py. Torch first, from $(TORCH) (the CPU build), so that
# transformer-lens does not pull a CUDA one; auto-circuit --no-deps (its vscode-tqdm,
# kaleido and word2word are not needed; plotly and blobfile are, at import).
AC_VENV ?= bench/.venv-autocircuit
AC_PY := $(AC_VENV)/bin/python

.PHONY: bench-env bench-compare
bench-env: $(AC_VENV)/.installed

$(AC_VENV)/.installed:
	$(PYTHON) -m venv $(AC_VENV)
	$(AC_PY) -m pip install -q --upgrade pip
	$(AC_PY) -m pip install -q $(TORCH)
	$(AC_PY) -m pip install -q transformer-lens==2.18.0 "numpy<2" pyarrow==21.0.0 \
		plotly==7.1.0 blobfile==3.3.0
	$(AC_PY) -m pip install -q --no-deps auto-circuit==1.0.1
	$(AC_PY) -c "import auto_circuit.utils.graph_utils, auto_circuit.prune_algos.subnetwork_probing"
	touch $@

# One SP step here vs in auto-circuit: one JSON line (ratio = ours / theirs).
bench-compare: install bench-env
	$(PY) bench/compare_autocircuit.py --repeats 3 --threads 1

clean:
	rm -rf $(VENV) .pytest_cache
