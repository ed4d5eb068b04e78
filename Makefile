# avgas: make setup | make lint | make test | make test-fast | make book | make assignments | make explore | make clean
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.avgas-installed
# pip prints a warning per package for the machine's local indexes; keep the log readable
QUIET := grep -v "is ignored: it is neither a file nor a directory" || true

.PHONY: setup system lint test test-fast book clean notebooks-sync assignments explore
setup: $(STAMP) system

# Chromium, npm and ffmpeg from apt when missing (a second run does nothing).
system:
	bash scripts/install-system.sh

# Re-installs only when requirements.txt or pyproject.toml change (a second run is instant).
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | $(QUIET)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | $(QUIET)
	$(PY) -c "import avgas, torch, papermill; print('avgas ready, torch', torch.__version__)"
	touch $@

# ruff: lint (pyflakes, pycodestyle, import order) and the formatter's check; import-linter: the layers
# contract (core < settings < world < data < models < method < evaluation < display < face). Settings
# of both in pyproject.toml.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test: setup lint
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

# The main job: every notebook on the embedded default, then the book (HTML in _build/html).
# Notebook 10 of the default run reads the three-source run, notebook 08 shows the g_blend_share
# ablation (G with the other candidate share): avgas/main_job.py runs the three, two lanes side by side with one torch thread each
# (the default, then the ablation; the ablation's own G, then the sibling), then the default run's
# 08 and 10 again. The stand-ins,
# judges and separators they share are built once, in the instrument store runs/.instrument/
# (avgas/instrument.py). A finished run is reused (finished notebooks are skipped); the book is
# built from runs/default/; the stage table closes the job.
book: setup
	$(PY) -m avgas.main_job params/default.yaml
	$(PY) -m avgas book runs/default
	$(PY) -m avgas.stages $$($(PY) -m avgas.main_job --runs params/default.yaml)
	@echo "the book: _build/html/index.html"

# The course kit (book page "Teaching with avgas"): student notebooks and otter autograders of
# notebooks/assignments/ in _build/assignments/<name>/{student,autograder}/.
assignments: setup
	$(PY) -m avgas assignments

# The explorer (notebook 09) as a web app on a finished run: RUN=runs/quick make explore
RUN ?= runs/default
explore: setup
	$(PY) -m avgas explore $(RUN)

# Each notebook's text form (notebooks/NN_name.py, jupytext percent) from whichever of the two changed last.
notebooks-sync: setup
	$(VENV)/bin/jupytext --sync notebooks/[0-9][0-9]_*.ipynb

clean:
	rm -rf runs _build .pytest_cache
