# Sourced by scripts/run and scripts/test with one argument, the extra to install
# ("" for none, "test"): make .venv and install the project
# into it when pyproject.toml changed since the last install.
python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "talkroom needs Python 3.11 or newer (found $("$python" --version 2>&1))." >&2
  exit 1
}
extra=${1:-}
stamp=.venv/.installed${extra:+-$extra}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".${extra:+[$extra]}"
  touch "$stamp"
fi
