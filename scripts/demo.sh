#!/usr/bin/env bash
# Set up (first run only) and run the demo: the plan of a small model, then a short training run.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
# numpy: without it torch warns "Failed to initialize NumPy" on every command
install_paramwise cli,yaml numpy
exec "$venv/bin/paramwise" demo "$@"
