# Two commands for everyone: `make lab` (work in the notebooks) and `make test` (what CI runs).
# Both create .venv when it is missing and install the pinned requirements first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(CURDIR)/$(VENV)/bin/python
STAMP := $(VENV)/.installed
ASSIGNMENT := sizing_and_tta
SUBMISSIONS ?= submissions
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
PORT ?= 8888
WORKSPACE ?= $(CURDIR)/workspace/$(ASSIGNMENT)
ARGS ?=
HUB_STATE ?= /srv/sizing-and-tta
HUB_PORT ?= 8000
HUB_STUDENTS ?= 3
HUB_NOTEBOOKS ?=
HUB_GRADE_ON_SUBMIT ?= 0
HUB_GRADE_JOBS ?= 1

# Every cache stays inside the repository (fastai, torch and matplotlib default to ~).
export WORKBOOK_CACHE := $(CURDIR)/.cache
export FASTAI_HOME := $(CURDIR)/.cache/fastai
export TORCH_HOME := $(CURDIR)/.cache/torch
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib
export JUPYTER_CONFIG_DIR := $(CURDIR)/.cache/jupyter/config
export JUPYTER_DATA_DIR := $(CURDIR)/.cache/jupyter/data
export IPYTHONDIR := $(CURDIR)/.cache/ipython
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Python caches bytecode in the venv at first import (see the stamp below): a setting that forbids it is dropped
unexport PYTHONDONTWRITEBYTECODE

ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: help setup lint data lab lab-instructor browser-deps sandbox-deps test release grade grade-golden similarity images bench gpu-check train clean \
	hub hub-deps hub-setup test-hub test-quick test-e2e

help:
	@echo "make lab      start JupyterLab on your copy of the student workbook (workspace/, copied from release/)"
	@echo "make test     install, generate the embedded data set, run every test but the end-to-end suite"
	@echo "make test-quick   the tests that start no kernel, browser or training (everyday work, about 2 min)"
	@echo "make test-e2e (root) the end-to-end suite: a Dask cluster and the JupyterHub round trip"
	@echo "make release  regenerate release/ from source/ with nbgrader"
	@echo "make grade SUBMISSIONS=dir JOBS=n   grade a folder of submissions (one folder per student), n at once"
	@echo "make grade SUBMISSIONS=dir SCHEDULER=tcp://host:8786   record on a Dask cluster's workers (README)"
	@echo "make gpu-check   run the notebooks and grade the golden class on CUDA (says so and succeeds without one)"
	@echo "make grade-golden   grade the golden submissions and print the table"
	@echo "make similarity SUBMISSIONS=dir   rank every pair of students by shared solution code (HTML report)"
	@echo "make lab-instructor   JupyterLab with formgrader on the course (repo root)"
	@echo "make train ARGS='--schedule 32:3,64:2 --mixup 0.4 --tta'   the long-training script (ARGS=--help for all)"
	@echo "make lint     ruff (configured in pyproject.toml)"
	@echo "make hub      (root) the course on JupyterHub at 127.0.0.1:$(HUB_PORT): Unix users, exchange, formgrader"
	@echo "make test-hub (root) the nbgrader round trip on the hub in headless Chromium"
	@echo "make images | bench | browser-deps | sandbox-deps | clean"

# The venv is made without pip (its ensurepip takes 4 s): the pip of the Python it was made from (22.3 or later,
# else the venv's own) installs uv into it, and uv installs the pinned list (`.venv/bin/uv pip install` adds a
# package later): it unpacks the wheels (torch's CUDA libraries are 5 GB) on every core, where pip uses one.
# uv reads no pip configuration, so it is handed the package sources pip is configured with on this machine (a
# mirror or a folder of wheels), and pip's rule for choosing among several sources (the best version from any of
# them: uv's unsafe-best-match).
# requirements-overrides.txt drops an optional package whose import costs every Jupyter process a second or more.
# Bytecode: Python writes it at the first import of each module, instead of uv compiling all ~17,500 installed
# files (26.7 s on 2 cores with compileall), of which about a quarter is ever imported. Sandboxed kernels see the
# venv read-only and cannot write it, so the stamp imports what a grading kernel and the grader import (and
# JupyterLab's server, for make lab), two processes at once (the torch chain is the long one).
# bench/kernel_bytecode.py lists what a sandboxed kernel running every notebook's imports, an error, an interrupt
# and an output flood still compiles for itself (none, with this list; IPython's tracebacks import stack_data and
# pygments' lexer). (debugpy warns about frozen modules on import, a warning for debugging sessions that
# PYDEVD_DISABLE_FILE_VALIDATION turns off.)
UV_VERSION := 0.13.9
UV_SOURCES = $(shell $(PYTHON) -m pip config list 2>/dev/null \
	| sed -n "s/^[^.]*\.\(index-url\|extra-index-url\|find-links\)='\(.*\)'$$/\1 \2/p" \
	| awk '{for (i = 2; i <= NF; i++) print "--" $$1, $$i}' | sort -u) --index-strategy unsafe-best-match
FIRST_IMPORTS := "torch._dynamo, torchvision.models, fastai.vision.all" \
	"sklearn.model_selection, scipy.stats, matplotlib.pyplot, pandas, matplotlib_inline.backend_inline, \
	ipykernel.kernelapp, ipykernel.debugger, debugpy.server.api, IPython.core.completerlib, IPython.core.debugger, \
	IPython.core.logger, IPython.core.oinspect, IPython.extensions.storemagic, IPython.utils.wildcard, \
	tornado.platform.asyncio, zmq.utils.garbage, stack_data, pygments.lexers.python, pygments.formatters.terminal256, \
	pygments.console, jupyter_client.manager, nbclient, nbgrader.apps.api, jupyter_server.serverapp, jupyterlab.labapp"
# the Python the venv was made from, asked at run time (the Makefile's PATH finds the venv's python3 first)
BASE_PYTHON = "$$($(PY) -c 'import sys; print(sys._base_executable)')"
# its cache stays in the repository too (the venv hard-links its files)
UV := UV_CACHE_DIR=$(CURDIR)/.cache/uv $(VENV)/bin/uv
$(STAMP): requirements.txt requirements-overrides.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv --without-pip $(VENV)
	$(BASE_PYTHON) -m pip --python $(PY) install --quiet --disable-pip-version-check uv==$(UV_VERSION) \
		|| { $(PY) -m ensurepip --upgrade && $(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); }
	$(UV) pip install --quiet --python $(PY) $(UV_SOURCES) -r requirements.txt --override requirements-overrides.txt
	$(UV) pip install --quiet --python $(PY) --no-deps --no-build-isolation -e .
	printf '%s\n' $(FIRST_IMPORTS) | PYDEVD_DISABLE_FILE_VALIDATION=1 xargs -P 2 -I{} $(PY) -W ignore -c 'import {}'
	@touch $@

setup: $(STAMP)

data: setup
	$(PY) -m workbook.synthetic

# nbgrader's assignment list reads nbgrader_config.py from the notebook root; JUPYTER_CONFIG_PATH points
# it at the course's (exchange folder) from release/. Formgrader is the instructor's (make lab-instructor).
# Students work in a git-ignored copy of release/: `make release` can never overwrite their work, and
# notebooks already there are kept; a notebook added to release/ later is copied in.
# The student id (per-student numbers of some questions, workbook/variants.py) is asked once and kept in
# the workspace; STUDENT=id sets it without asking. JupyterHub users need neither: their user name is used.
STUDENT_FILE := $(WORKSPACE)/.student_id
lab: data
	mkdir -p $(WORKSPACE)
	@for nb in release/$(ASSIGNMENT)/*.ipynb; do \
		test -e "$(WORKSPACE)/$$(basename $$nb)" || cp -v "$$nb" "$(WORKSPACE)/"; done
	@if [ -n "$(STUDENT)" ]; then echo "$(STUDENT)" > $(STUDENT_FILE); fi
	@if [ ! -s $(STUDENT_FILE) ]; then read -r -p "Your student id (the one your instructor files your work under): " id \
		&& [ -n "$$id" ] && echo "$$id" > $(STUDENT_FILE) \
		|| { echo "make lab: no student id given; run make lab STUDENT=<your id>" >&2; exit 2; }; fi
	@echo "student id: $$(cat $(STUDENT_FILE)) (kept in $(STUDENT_FILE))"
	WORKBOOK_STUDENT="$$(cat $(STUDENT_FILE))" JUPYTER_CONFIG_PATH=$(CURDIR)/student_lab:$(CURDIR) $(PY) -m jupyter lab --no-browser --ip=127.0.0.1 --port=$(PORT) $(ALLOW_ROOT) \
		--ServerApp.root_dir=$(WORKSPACE) \
		--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=False

lab-instructor: data
	$(PY) -m jupyter lab --no-browser --ip=127.0.0.1 --port=$(PORT) $(ALLOW_ROOT) --ServerApp.root_dir=$(CURDIR)

# Headless Chromium from Debian's packages for tests/test_browser.py (apt-get when missing and root).
browser-deps: setup
	$(PY) -m tests.browser --install

# bubblewrap, the grading sandbox (autograder/sandbox_view.py): apt-get when missing and root; otherwise
# say how to get it (the grader refuses to grade without it unless given --unsafe-no-sandbox).
sandbox-deps:
	@command -v bwrap >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends bubblewrap; \
		else echo "bubblewrap (bwrap) is missing and cannot be installed here: ask an administrator for the package bubblewrap"; fi; }

# The linter first: it takes a second, and a lint error fails the run before the long tests.
lint: setup
	$(VENV)/bin/ruff check .

# make test: every test but the end-to-end suite (make test-e2e) and the notebooks under nbval, in one session
# (tests/nbval_budget.py gives only the notebooks' kernels WORKBOOK_FAST=1, one short epoch per training: the
# outputs nbval compares, # NBVAL_CHECK_OUTPUT cells, never depend on training); the slowest 15 are listed at
# the end. make test-quick: only tests that start no kernel, browser or training (slow).
# Both run their test files on TEST_WORKERS pytest-xdist workers (one file per worker at a time, so a file's
# module fixtures and a notebook's cells stay together), each process with one OpenMP thread: torch's default
# of one thread per core, in several processes at once, spins the cores on each other's waits.
PYTEST := $(PY) -m pytest -p no:cacheprovider
TEST_WORKERS ?= $(JOBS)
PARALLEL_TESTS := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
test: data browser-deps sandbox-deps lint
	OMP_NUM_THREADS=1 $(PYTEST) tests source/$(ASSIGNMENT) -m "not e2e" $(PARALLEL_TESTS) --durations=15 \
		-p tests.nbval_budget --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg

test-quick: data lint
	OMP_NUM_THREADS=1 $(PYTEST) tests -m "not slow and not e2e" $(PARALLEL_TESTS) --durations=5

# The end-to-end suite: a real Dask scheduler and workers, and the JupyterHub round trip (root). .ci/run runs it
# after make test.
test-e2e: data hub-deps browser-deps sandbox-deps
	WORKBOOK_HUB_TEST=1 $(PYTEST) tests -m e2e -s --durations=5

release: setup
	$(PY) -m autograder.cli release

grade: data sandbox-deps
	$(PY) -m autograder.cli grade $(SUBMISSIONS) $(if $(SCHEDULER),--scheduler $(SCHEDULER),--jobs $(JOBS))

# Grade the golden submissions (reference, blank, seed student, mutants, attacks) as a class.
grade-golden: data sandbox-deps
	rm -rf .grading/golden-class .grading/golden
	$(PY) -m autograder.golden.build .grading/golden-class > /dev/null
	$(PY) -m autograder.cli grade .grading/golden-class --grading-root .grading/golden --jobs $(JOBS)

# Every pair of students compared on their solution code; the ranked HTML report goes to .grading/.
similarity: setup
	$(PY) -m autograder.similarity $(SUBMISSIONS) --out .grading/similarity.html

# On a CUDA machine: run the notebooks and grade the golden class on the GPU, printing times.
train: data
	$(PY) -m workbook.train $(ARGS)

gpu-check: data sandbox-deps
	$(PY) -m autograder.gpu_check

images: data
	$(PY) -m workbook.plots

# Every bench script in turn (bench/_*.py are helpers they import).
bench: data sandbox-deps
	@for script in bench/[!_]*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

# The course on JupyterHub (hub/, README "A course on JupyterHub"). hub-setup creates the Unix users
# (HUB_STUDENTS students and an instructor, passwords in $(HUB_STATE)/passwords.txt), the exchange and the
# instructor's course (HUB_NOTEBOOKS: the assignment's notebooks, default all); needs root.
# configurable-http-proxy 5 needs Node.js 20 or later (Debian 12's own is 18).
hub-deps: setup
	@major=$$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null); \
	if [ -z "$$major" ] || ! command -v npm >/dev/null || [ "$$major" -lt 20 ]; then \
		echo "error: make hub needs Node.js >= 20 and npm (found: $${major:-no node}); install them, e.g. from NodeSource's nodejs 20 package"; exit 1; fi
	cd hub && npm ci --no-audit --no-fund --loglevel=error

hub-setup: data hub-deps sandbox-deps
	$(PY) hub/setup_course.py --students $(HUB_STUDENTS) --state $(HUB_STATE) $(if $(HUB_NOTEBOOKS),--notebooks $(HUB_NOTEBOOKS))

hub: hub-setup
	@echo "JupyterHub at http://127.0.0.1:$(HUB_PORT)/ ; log in as a user of $(HUB_STATE)/passwords.txt (user:password)"
	cd $(HUB_STATE) && HUB_STATE=$(HUB_STATE) HUB_PORT=$(HUB_PORT) HUB_GRADE_ON_SUBMIT=$(HUB_GRADE_ON_SUBMIT) HUB_GRADE_JOBS=$(HUB_GRADE_JOBS) $(PY) -m jupyterhub -f $(CURDIR)/hub/jupyterhub_config.py

# The round trip (release, fetch, validate, submit, collect, sandboxed grading, hand grading, feedback,
# the file-system isolation from a student's kernel) in headless Chromium, on its own users and state
# folder, all removed at the end, also when it fails; screenshots in test-artifacts/hub/.
test-hub: data hub-deps browser-deps sandbox-deps
	WORKBOOK_HUB_TEST=1 $(PYTEST) -s tests/test_hub.py

clean:
	rm -rf .grading .pytest_cache
