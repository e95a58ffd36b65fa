# lit_snn: every target creates and reuses its own virtual environment in .venv.
# On a machine without CUDA the CPU build of torch is installed first, so no multi-GB CUDA build is pulled.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0
SPIKINGJELLY_VERSION ?= 2.0.0
NEUROBENCH_VERSION ?= 2.3.0
NORSE_VERSION ?= 1.1.0
SINABS_VERSION ?= 3.1.3
ABLATION ?= ablations/default.yaml
WORKERS ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK=1
# pip's own lines (one per package) show the set-up moving; no progress bars in logs
PIP_INSTALL := $(BIN)/pip install --progress-bar off
TICKING := scripts/ticking.sh  # a line every 20 s while a long step runs

.PHONY: help venv test test-gpu ablation compare ui train bench bench-cpu doctor lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@echo "lit_snn: setting up $(VENV) (first run only; a few minutes, mostly downloads)"
	$(PYTHON) -m venv $(VENV)
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
		$(TICKING) "installing torch" $(PIP_INSTALL) "torch"; \
	else \
		$(TICKING) "installing torch" $(PIP_INSTALL) "torch==$(TORCH_VERSION)"; \
	fi
	$(TICKING) "installing lit_snn and its dependencies" $(PIP_INSTALL) -e ".[dev]"
	# SpikingJelly: the benchmark's competitor and a test oracle for the neuron math. Without its
	# dependencies on purpose: they pull torchvision/torchaudio (a CUDA torch); its neurons need only loguru.
	$(PIP_INSTALL) --no-deps "spikingjelly==$(SPIKINGJELLY_VERSION)" "loguru>=0.7,<1"
	# NeuroBench: the standard metrics (lit-snn neurobench). Without its dependencies on purpose: it
	# declares torchaudio (a torch of another version); its metrics need snntorch (from .[dev]), tonic and numba.
	$(PIP_INSTALL) --no-deps "neurobench==$(NEUROBENCH_VERSION)"
	# Norse and Sinabs: independent NIR readers of our exported graphs (tests/test_export_nir_peers.py). Without
	# their dependencies on purpose: Norse declares torchvision, Sinabs samna (a chip SDK); both are pure Python
	# and their NIR importers need only nir/nirtorch (from .[dev]) and, for Sinabs, pbr.
	$(PIP_INSTALL) --no-deps "norse==$(NORSE_VERSION)" "sinabs==$(SINABS_VERSION)" "pbr>=6"
	@touch $(STAMP)
	@echo "lit_snn: $(VENV) is ready"

venv: $(STAMP)  ## create the virtual environment (.venv)

test: $(STAMP)  ## run the test suite (CPU; Triton kernels through TRITON_INTERPRET=1)
	OMP_NUM_THREADS=1 TRITON_INTERPRET=1 $(BIN)/python -m pytest -q -n 2 --timeout=900

test-gpu: $(STAMP)  ## run only the GPU-marked tests (needs CUDA)
	$(BIN)/python -m pytest -q -m gpu

ablation: $(STAMP)  ## run the default ablation on the embedded data (WORKERS=2 processes), then print the comparison
	$(BIN)/lit-snn ablate $(ABLATION) --workers $(WORKERS)

compare: $(STAMP)  ## compare the runs of an ablation from MLflow (tables + plots)
	$(BIN)/lit-snn compare $(ABLATION)

ui: $(STAMP)  ## open the MLflow UI on the local store
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlruns.db --default-artifact-root ./mlartifacts

train: $(STAMP)  ## one training of the lif preset on the embedded digits
	$(BIN)/lit-snn train --config configs/digits_lif.yaml

bench: $(STAMP)  ## neuron kernel benchmark (needs a GPU; says so and exits otherwise)
	$(BIN)/lit-snn bench

bench-cpu: $(STAMP)  ## CPU neuron benchmark: ours vs eager, torch.compile, SpikingJelly, snnTorch; 1 and 2 threads
	$(BIN)/lit-snn bench --device cpu

doctor: $(STAMP)  ## check this machine: versions, every neuron backend against the reference, stores, datasets
	$(BIN)/lit-snn doctor

lint: $(STAMP)  ## ruff over the package and tests
	$(BIN)/ruff check lit_snn tests

clean:  ## remove the virtual environment, local stores, results and Lightning's logs
	rm -rf $(VENV) mlruns.db mlruns.db.lock mlartifacts optuna.db optuna.db.lock .lit_snn_cache results lightning_logs
