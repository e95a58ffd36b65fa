#!/usr/bin/env bash
# Everything the Triton kernels need measured on a CUDA machine, in a few long commands.
#
# The GPU image this team is lent has torch and triton but no SpikingJelly and no network, so:
#
#   scripts/gpu_session.sh fetch            # here (with PyPI): SpikingJelly + loguru wheels into .whl/
#   bash scripts/gpu_session.sh tests       # there: scan + PSN kernel tests on CUDA (fp32/bf16/fp16 vs the
#                                           #   reference, determinism, long T) + SpikingJelly equivalence
#   bash scripts/gpu_session.sh bench [ARGS]  # there: lit-snn bench (default: lif, ar_lif, da_lif, i_lif,
#                                           #   ib_ra_lif at T = 4, fp32 and bf16, all four columns:
#                                           #   the issue's targets); ARGS go to lit-snn bench instead
#
# On the machine, commands run from the repository root without installing lit_snn (PYTHONPATH=.),
# so nothing is fetched; logs go to $OUT when it is set (the device tool), else to gpu_logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
SPIKINGJELLY_VERSION="${SPIKINGJELLY_VERSION:-2.0.0}"
LOGS="${OUT:-gpu_logs}"

setup_there() {
    mkdir -p "$LOGS"
    if compgen -G ".whl/*.whl" >/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
        export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
    else
        echo "gpu_session: no .whl/ here: the SpikingJelly column and its equivalence tests will be skipped"
    fi
    export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
    unset TRITON_INTERPRET
    { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"; } \
        | tee "$LOGS/device.txt"
    python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, \
'cuda', torch.cuda.is_available())" | tee -a "$LOGS/device.txt"
}

case "${1:-}" in
    fetch)
        mkdir -p .whl
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform any -d .whl "spikingjelly==$SPIKINGJELLY_VERSION" "loguru>=0.7,<1"
        ls -la .whl
        echo "carry .whl in the device call (carry: [\".whl\"])"
        ;;
    tests)
        setup_there
        python3 -m pytest -q -p no:cacheprovider tests/neurons/test_kernels.py tests/neurons/test_parallel.py \
            tests/neurons/test_gradients.py tests/neurons/test_spikingjelly_equivalence.py 2>&1 | tee "$LOGS/gpu_tests.txt"
        ;;
    bench)
        shift
        setup_there
        # default: the issue's targets first (each case compiles the reference: ~0.5 min per case)
        if [ "$#" -eq 0 ]; then set -- --presets lif,ar_lif,da_lif,i_lif,ib_ra_lif --T 4 --dtypes fp32,bf16; fi
        python3 -m lit_snn.bench "$@" 2>&1 | tee "$LOGS/bench.txt"
        ;;
    *)
        sed -n '2,14p' "$0"
        exit 2
        ;;
esac
