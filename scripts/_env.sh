# Sourced by the other scripts: make (or reuse) the virtual environment and install paramwise.
# PARAMWISE_VENV picks the folder (default .venv beside the repository root).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PARAMWISE_VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
py="$venv/bin/python"
pip_q() { "$py" -m pip install --quiet --disable-pip-version-check "$@"; }
# torch==2.13.0 exactly: that spelling takes the CPU wheel on disk instead of a multi-GB CUDA build.
"$py" -c 'import torch' 2>/dev/null || pip_q torch==2.13.0
