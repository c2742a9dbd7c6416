#!/usr/bin/env bash
# The template's whole test suite, the one command for it: README.md gives it and
# .ci/run runs it. It builds (or reuses) the tooling environment .venv from
# requirements.txt (scripts/lib/env.sh), so it works on a fresh clone, then runs
# `python -m pytest tests` with .venv/bin first on PATH.
#
#   scripts/test.sh                 every test (docs/testing.md#time says how long)
#   scripts/test.sh -x -k hooks     more pytest arguments (they come after `tests`)
#   scripts/test.sh --prepare       build the environment only, run nothing
set -euo pipefail

# shellcheck source=scripts/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
template_env
cd "$TEMPLATE_ROOT"

if [ "${1:-}" = "--prepare" ]; then
    [ "$#" -eq 1 ] || { echo "error: --prepare takes no other argument" >&2; exit 2; }
    exit 0
fi
exec "$TEMPLATE_VENV/bin/python" -m pytest tests "$@"
