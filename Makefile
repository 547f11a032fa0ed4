# pathdep: two commands do everything on a fresh machine (only package registries needed).
#   make run    venv + install + default data + `snakemake --cores 8 all` on config.yaml
#   make test   venv + install + the test suite
# Both are idempotent: a second call reuses the venv and Snakemake's finished outputs.
VENV ?= .venv
PY := $(VENV)/bin/python
# The torch build to install. On the project's CI machines pip is capped at these releases
# (they lie on disk); elsewhere override, e.g. `make run TORCH="torch torchvision"`.
TORCH ?= torch==2.14.1 torchvision==0.29.1
CORES ?= 8
PYTEST_ARGS ?=

.PHONY: venv data run test lint bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[workflow,test]'
	touch $@

# Fashion-MNIST offline: Debian's dataset-fashion-mnist package (IDX files under
# /usr/share/datasets/fashion-mnist). Installed when we are root and apt-get exists;
# otherwise point datasets.fashion_mnist at your copy, or use source: torchvision.
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then echo "Fashion-MNIST: /usr/share/datasets/fashion-mnist"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null; }; \
	else echo "Fashion-MNIST not found: install Debian's dataset-fashion-mnist or edit config.yaml (datasets.fashion_mnist)" >&2; exit 1; fi

run: venv data
	$(VENV)/bin/snakemake --cores $(CORES) all

test: venv
	$(PY) -m pytest -q -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/snakemake --lint

bench: venv data
	$(PY) bench/bench_training.py

clean:
	rm -rf results .snakemake
