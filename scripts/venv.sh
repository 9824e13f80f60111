#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and print its path on stdout.
#
# The venv lives outside the clone, in ~/.cache/at2-tune/venv-py<version> (override with
# AT2_VENV), so every clone and CI run on this machine reuses the ~6 GB of torch/ray wheels.
# The project is (re)installed in editable mode whenever pyproject.toml or the clone's path
# changed since the last install; otherwise nothing is installed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
pyver="$("$python" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
venv="${AT2_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/at2-tune/venv-py$pyver}"
stamp="$venv/.at2-tune-installed"
want="$( (cat "$root/pyproject.toml"; echo "$root") | sha256sum | cut -c1-16)"
if [ ! -x "$venv/bin/python" ]; then
  echo "creating virtual environment $venv" >&2
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "installing at2-tune and its dependencies into $venv (first time: a few minutes)" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[test,experiments,bench,digits]" >&2
  echo "$want" > "$stamp"
fi
echo "$venv"
