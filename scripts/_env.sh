# Sourced by the other scripts: make (or reuse) the virtual environment and install paramwise.
# PARAMWISE_VENV picks the folder (default .venv beside the repository root).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PARAMWISE_VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
py="$venv/bin/python"

# pip install, quietly. Index locations in the machine's pip configuration that lack a package make
# pip warn "Location '...' is ignored" for each package and location: those lines are dropped; every
# other message (warnings and errors) still shows.
pip_q() {
  local log status=0
  log="$(mktemp)"
  "$py" -m pip install --quiet --disable-pip-version-check "$@" 2>"$log" || status=$?
  grep -v "^WARNING: Location '.*' is ignored: it is neither a file nor a directory\.$" "$log" >&2 || true
  rm -f "$log"
  return "$status"
}

# has DIST...: every named distribution is installed (metadata only: importing torch takes seconds)
has() {
  "$py" - "$@" <<'PY' 2>/dev/null
import importlib.metadata as metadata
import sys

for name in sys.argv[1:]:
    metadata.version(name)
PY
}

# editable_here: paramwise is installed editable from this root (not a copy, not another checkout)
editable_here() {
  "$py" - "$root" <<'PY' 2>/dev/null
import importlib.metadata as metadata
import json
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

url = json.loads(metadata.distribution("paramwise").read_text("direct_url.json") or "{}")
assert url.get("dir_info", {}).get("editable"), "paramwise is installed, but not editable"
assert Path(unquote(urlparse(url["url"]).path)).resolve() == Path(sys.argv[1]).resolve()
PY
}

# install_paramwise EXTRAS [PACKAGE...]: `pip install -e "$root[EXTRAS]" PACKAGE...`, skipped (pip takes
# seconds even when nothing changes) when the venv already has that install: a stamp in the venv
# holds the root, the extras, the packages and a hash of pyproject.toml from the last install, and
# paramwise must still be installed editable from this root. Editing pyproject.toml installs again.
install_paramwise() {
  local extras="$1" stamp="$venv/paramwise-install-${1//,/-}.stamp" want
  shift
  want="$root [$extras] $* $(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && has "$@" && editable_here; then
    return 0
  fi
  rm -f "$stamp"
  pip_q -e "$root[$extras]" "$@"
  printf '%s\n' "$want" >"$stamp"
}

# torch==2.13.0 exactly: that spelling takes the CPU wheel on disk instead of a multi-GB CUDA build.
has torch || pip_q torch==2.13.0
