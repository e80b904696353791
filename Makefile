# The README's commands. Each target sets up what it needs in .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kmagic-installed
export PYTHONUNBUFFERED := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: lab demo test test-fast bench install browser-deps kernel-k7 lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Installs kmagic (editable, TensorFlow, test tools); builds the JupyterLab extension with jlpm.
$(STAMP): pyproject.toml labextension/package.json | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# A second kernel for the tests: ipykernel 7.4 over everything else of .venv (a venv without pip
# whose .pth puts ipykernel 7 and its one new dependency first, then .venv's site-packages).
# The tests register it as the kernelspec `kmagic-k7` (KMAGIC_IPYKERNEL7_PYTHON points at it).
K7 := .venv-k7
K7_STAMP := $(K7)/.kmagic-k7
export KMAGIC_IPYKERNEL7_PYTHON := $(CURDIR)/$(K7)/bin/python

$(K7_STAMP): $(STAMP)
	rm -rf $(K7)
	$(BIN)/python -m venv --without-pip $(K7)
	$(BIN)/python -m pip install -q --no-deps --target $(K7)/ipykernel7 "ipykernel==7.4.*" "nest-asyncio2==1.7.*"
	$(BIN)/python -c "import site, sys; print(sys.argv[1]); print(f'import site; site.addsitedir({site.getsitepackages()[0]!r})')" \
	  "$(CURDIR)/$(K7)/ipykernel7" > "$$($(K7)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/kmagic-k7.pth"
	$(K7)/bin/python -c "import ipykernel, kmagic; assert ipykernel.version_info[:2] == (7, 4), ipykernel.__version__"
	touch $(K7_STAMP)

kernel-k7: $(K7_STAMP)

# Debian's Chromium for the browser tests (Playwright cannot download browsers here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: run 'sudo apt-get install -y chromium' (browser tests will be skipped)"; fi; }

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

demo: $(STAMP)
	mkdir -p reports
	KMAGIC_TEST_MODE=1 $(BIN)/jupyter nbconvert --to html --execute --ExecutePreprocessor.timeout=600 \
	  --output-dir reports --output quickstart notebooks/01_quickstart.ipynb
	@echo "Report written to reports/quickstart.html"

lint: $(STAMP)
	$(BIN)/ruff check kmagic tests benchmarks scripts
	$(BIN)/python scripts/make_notebooks.py --check
	$(BIN)/python scripts/make_docs.py --check
	$(BIN)/python scripts/make_keras_names.py --check
	$(BIN)/mypy

# Unit tests only (no kernels, browsers or long runs), hypothesis's small profile: the loop while editing.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -q -p no:cacheprovider -m "not slow and not kernel and not browser"

test: $(STAMP) $(K7_STAMP) browser-deps lint
	$(BIN)/python -m pytest tests -q -p no:cacheprovider --hypothesis-profile=large
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  $(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax notebooks/; fi

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf reports artifacts .pytest_cache
