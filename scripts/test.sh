#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite: ruff, mypy, then pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
pip_q -e "$root[dev]"
# mmengine is a test-only reference for the differential tests; its heavy extras are not needed.
if ! "$py" -c 'import mmengine' 2>/dev/null; then
  pip_q --no-deps mmengine==0.10.7
  pip_q addict yapf termcolor rich pyyaml numpy packaging regex
fi
cd "$root"
"$venv/bin/ruff" check src tests $(ls -d benchmarks 2>/dev/null)
"$venv/bin/mypy"
exec "$py" -m pytest "$@"
