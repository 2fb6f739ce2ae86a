# Token Capital — build and test. `make book` and `make test` are the two commands README.md gives.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HTML := _build/html
# Executed notebooks draw their figures as book HTML blocks (see tokenlib/book/figures.py).
export TOKENBOOK_RENDER := html
export PYTHONHASHSEED := 0
# pip's own cache stays inside the build folder so a clean clone builds the same way anywhere.
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help env system-deps book test test-fast lab serve clean bench calibrate findings run

help:
	@echo "make book    set up the pinned environment, execute the chapters, build $(HTML)"
	@echo "make test    the same, then every test (unit, data, nbval, headless browser)"
	@echo "make test-fast  unit, property, data and package tests only, without building the book"
	@echo "make lab     open the chapters in JupyterLab, in the same environment"
	@echo "make run CHAPTER=03 UTILIZATION=0.5   re-run one chapter with changed parameters; print the findings that moved"
	@echo "make findings  rebuild, then rewrite findings.csv (the ledger of every glued number)"
	@echo "make serve   serve the built book on http://127.0.0.1:8000"
	@echo "make bench   run the benchmarks (cost kernel grid, latency frontier, city-race Monte Carlo)"

# Debian packages the book needs: CJK fonts for the PNG exports; Chromium for the browser test;
# python3-venv where the system Python lacks ensurepip. Installed only when missing.
system-deps:
	@need=""; \
	[ -d /usr/share/fonts/opentype/noto ] && ls /usr/share/fonts/opentype/noto | grep -q CJK || need="$$need fonts-noto-cjk"; \
	[ -x /usr/bin/chromium ] || need="$$need chromium"; \
	$(PYTHON) -c "import ensurepip" 2>/dev/null || need="$$need python3-venv"; \
	if [ -n "$$need" ]; then \
	  echo "installing Debian packages:$$need"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$need >/dev/null; \
	fi

$(STAMP): requirements.lock pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements.lock
	# tokenlib from this checkout, without a build step: a .pth file puts the repo on sys.path
	$(BIN)/python -c "import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()['purelib'], 'tokenbook.pth').write_text(str(pathlib.Path.cwd()) + '\n')"
	$(BIN)/python -m pip check
	touch $(STAMP)

env: $(STAMP)

# The execution cache keys on a notebook's code cells only; a change to anything a chapter reads
# (tokenlib/, every file in data/, _config.yml, _toc.yml, the lock) must re-run the chapters too, so the
# cache is dropped when their fingerprint changes (tokenlib.book.inputs_fingerprint). Figure downloads
# are written by the build from the executed outputs (tokenlib.book.sphinxext), never by a notebook run.
book: env
	@fp=$$($(BIN)/python -m tokenlib.book fingerprint); mkdir -p _build; \
	if [ "$$(cat _build/.inputs 2>/dev/null)" != "$$fp" ]; then \
	  echo "tokenlib or data changed: re-executing every chapter"; rm -rf _build/.jupyter_cache; \
	  echo "$$fp" > _build/.inputs; fi
	rm -rf $(HTML)
	$(BIN)/jupyter-book build . --all --warningiserror --nitpick --keep-going
	@echo "The book is in $(HTML)/index.html (figure downloads in $(HTML)/figures/). 'make serve' serves it."

test: book
	$(BIN)/python -m pytest tests $$($(BIN)/python -m tokenlib.book notebooks --for-nbval) \
	  --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider

# The tests that need no built book (see the `book` marker in tests/conftest.py), spread over the CPUs.
test-fast: env
	$(BIN)/python -m pytest tests -m "not book" -n auto -p no:cacheprovider

# JupyterLab opens the MyST chapters as notebooks (jupytext); figures draw with the book's own Vega
# bundle, sent by the kernel (TOKENBOOK_RENDER unset: the book's HTML mode needs the site's scripts).
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_SETTINGS): $(STAMP) tokenlib/book/lab.py
	mkdir -p $(dir $@)
	$(BIN)/python -m tokenlib.book.lab settings > $@

lab: env $(LAB_SETTINGS)
	env -u TOKENBOOK_RENDER $(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=. \
	  --ContentsManager.preferred_dir=chapters --LabApp.extension_manager=readonly \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# Re-run one chapter with changed parameters (papermill-style: a cell after the parameters cell), without
# rebuilding the book; prints every finding that moved against findings.csv. Any NAME=value given on the
# command line that the chapter's parameters cell defines is injected (values are Python literals).
run: env
	$(BIN)/python -m tokenlib.book.run $(MAKEOVERRIDES)

# Rewrite the findings ledger from a fresh build; commit the diff with the change that moved them.
findings: book
	$(BIN)/python -m tokenlib.book.findings write

serve:
	@[ -f $(HTML)/index.html ] || { echo "no book built yet: run 'make book'"; exit 1; }
	$(BIN)/python -m http.server 8000 --bind 127.0.0.1 --directory $(HTML)

bench: env
	$(BIN)/python benchmarks/bench_cost_grid.py
	$(BIN)/python benchmarks/bench_frontier.py
	$(BIN)/python benchmarks/bench_monte_carlo.py

calibrate: env
	$(BIN)/python -m tokenlib.model.calibrate

clean:
	rm -rf _build
