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
# The integrations' frameworks, the optimizer libraries that install on CPU (timm is left out: it needs
# torchvision) and the documentation site's builder, for their tests (never required by
# paramwise itself). Each declares torch, which the pinned CPU build above already satisfies; the check
# after the install makes sure nothing replaced it.
if ! has pytorch-lightning jsonargparse transformers accelerate mkdocs-material mkdocstrings-python lion-pytorch \
    dadaptation prodigyopt schedulefree pytorch-optimizer heavyball bitsandbytes torchao; then
  torch_before="$("$py" -c 'import importlib.metadata as m; print(m.version("torch"))')"
  pip_q "pytorch-lightning==2.6.6" "jsonargparse[signatures]>=4.39" "transformers==5.23.*" "accelerate>=1.0" \
    "mkdocs-material>=9.5" "mkdocstrings-python>=1.10" \
    lion-pytorch==0.2.5 dadaptation==3.2 prodigyopt==1.1.2 schedulefree==1.4.1 pytorch-optimizer==4.1.0 \
    heavyball==3.2.1 bitsandbytes==0.50.2 torchao==0.18.0
  torch_after="$("$py" -c 'import importlib.metadata as m; print(m.version("torch"))')"
  if [ "$torch_before" != "$torch_after" ]; then
    echo "scripts/test.sh: installing the test frameworks replaced torch $torch_before with $torch_after" >&2
    exit 1
  fi
fi
cd "$root"
"$venv/bin/ruff" check src tests $(ls -d benchmarks 2>/dev/null)
"$venv/bin/mypy"
NO_MKDOCS_2_WARNING=1 "$venv/bin/mkdocs" build --strict --quiet --site-dir site   # the documentation site (docs/, mkdocs.yml)
exec "$py" -m pytest "$@"
