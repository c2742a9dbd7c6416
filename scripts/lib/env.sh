# shellcheck shell=bash
# The template's tooling environment, for scripts/test.sh and scripts/serve-default.sh
# (sourced by both, so that a fresh machine gets one environment, built one way).
#
# template_env: sets TEMPLATE_VENV to a virtualenv that has requirements.txt installed
# and puts its bin/ first on PATH (the tests and the post-generation hook find uv,
# cookiecutter, ruff and mypy there). By default that is .venv in this clone, built
# with python3.11 if present, else python3 (3.11 or newer), and reused as long as
# requirements.txt is unchanged (its sha256 is kept in .venv/requirements.sha256).
# A TEMPLATE_VENV already set names an environment that has the requirements (the
# template's tests pass their own, sys.prefix): it is used as it is, nothing built.

TEMPLATE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

_base_python() {
    local python
    python=$(command -v python3.11 || command -v python3) || {
        echo "error: neither python3.11 nor python3 is on PATH (the template needs Python 3.11+)" >&2
        return 1
    }
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "error: $python is Python $("$python" -c 'import platform; print(platform.python_version())'); the template needs 3.11 or newer" >&2
        return 1
    fi
    echo "$python"
}

_sha256() {
    "$1" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$2"
}

template_env() {
    if [ -n "${TEMPLATE_VENV:-}" ]; then
        [ -x "$TEMPLATE_VENV/bin/python" ] || {
            echo "error: TEMPLATE_VENV=$TEMPLATE_VENV has no bin/python" >&2
            return 1
        }
    else
        TEMPLATE_VENV="$TEMPLATE_ROOT/.venv"
        local requirements="$TEMPLATE_ROOT/requirements.txt"
        local stamp="$TEMPLATE_VENV/requirements.sha256"
        local venv_python="$TEMPLATE_VENV/bin/python"
        # Usable: it runs, and it is Python 3.11+ (else it is rebuilt from scratch).
        if ! "$venv_python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            local python
            python=$(_base_python)
            echo "building $TEMPLATE_VENV with $python"
            "$python" -m venv --clear "$TEMPLATE_VENV"
        fi
        local wanted
        wanted=$(_sha256 "$venv_python" "$requirements")
        if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
            echo "installing requirements.txt into $TEMPLATE_VENV"
            rm -f "$stamp"  # written back only once the install has succeeded
            "$venv_python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
            echo "$wanted" >"$stamp"
        fi
    fi
    export TEMPLATE_VENV
    export PATH="$TEMPLATE_VENV/bin:$PATH"
}
