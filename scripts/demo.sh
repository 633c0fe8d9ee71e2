#!/usr/bin/env bash
# Set up (first run only) and run the demo: the plan of a small model, then a short training run.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
pip_q -e "$root[cli,yaml]"
exec "$venv/bin/paramwise" demo "$@"
