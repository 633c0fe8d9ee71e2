#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite: ruff, mypy, then pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
install_paramwise dev
# mmengine is a test-only reference for the differential tests; its heavy dependencies (matplotlib,
# opencv) are not needed. Its light ones go first, then mmengine alone, without dependencies and
# without pip's check of them, which would report the heavy ones missing as a resolver error.
if ! has mmengine; then
  pip_q addict yapf termcolor rich pyyaml numpy packaging regex
  pip_q --no-deps --no-warn-conflicts mmengine==0.10.7
fi
# mup is the reference for the width-scaling tests. It declares torchvision, which would pull a
# multi-GB CUDA torch; what `import mup` needs is torch and PyYAML, so it goes in without dependencies.
if ! has mup; then
  pip_q pyyaml
  pip_q --no-deps --no-warn-conflicts mup==1.0.0
fi
cd "$root"
"$venv/bin/ruff" check src tests $(ls -d benchmarks 2>/dev/null)
"$venv/bin/mypy"
exec "$py" -m pytest "$@"
