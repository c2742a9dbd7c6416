#!/usr/bin/env bash
# Bake the default project and serve it: what the template makes, running, on a
# machine with only Python. It builds (or reuses) the tooling environment .venv
# (scripts/lib/env.sh), bakes with `cookiecutter <this clone> --no-input -o OUT`
# (SQLite, the example domain; the post-generation hook migrates its database), gives
# the project its own .venv from its uv.lock, and serves it with uvicorn on
# http://127.0.0.1:${PORT:-8000} (try /docs).
#
#   scripts/serve-default.sh [OUT]   OUT defaults to build/ in this clone (git-ignored);
#                                    an existing OUT/my-service is served as it is.
set -euo pipefail

# shellcheck source=scripts/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
template_env

out=${1:-$TEMPLATE_ROOT/build}
mkdir -p "$out"
out=$(cd "$out" && pwd)
project="$out/my-service"

if [ -e "$project" ]; then
    echo "$project already exists: serving it as it is (delete it to bake anew)"
else
    cookiecutter "$TEMPLATE_ROOT" --no-input -o "$out"
fi
cd "$project"

# The hook builds the project's .venv only when cookiecutter's interpreter lacks the
# project's dependencies; the tooling environment has them all, so the hook migrated
# with it and built none. Build it here, the way the hook would: from uv.lock.
if [ ! -x .venv/bin/python ]; then
    python_version=$("$TEMPLATE_VENV/bin/python" -c \
        'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["tool"]["template-answers"]["python_version"])')
    echo "installing the project's locked dependencies into $project/.venv"
    UV_PROJECT_ENVIRONMENT=.venv uv sync --locked --extra dev --python "$python_version"
fi

echo "serving $project on http://127.0.0.1:${PORT:-8000} (API docs: /docs; Ctrl-C stops)"
exec .venv/bin/python -m uvicorn app.main:create_app --factory --host 127.0.0.1 --port "${PORT:-8000}"
