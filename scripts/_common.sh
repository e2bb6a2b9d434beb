# Shared by scripts/*: a virtual environment with the project, and Debian packages on demand.
# shellcheck shell=bash
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PLAYGATE_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

ensure_venv() {
  local extras="${1:-}"
  local stamp="$VENV/.installed${extras:+-$extras}"
  if [ ! -x "$PY" ]; then
    echo "==> creating virtual environment in $VENV" >&2
    python3 -m venv "$VENV"
  fi
  # Reinstall only when the project's requirements changed since the last install.
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "==> installing playgate${extras:+[$extras]} into $VENV" >&2
    local log="$VENV/pip-install.log"
    if ! { "$PY" -m pip install --disable-pip-version-check --upgrade pip &&
           "$PY" -m pip install --disable-pip-version-check -e "$ROOT${extras:+[$extras]}"; } >"$log" 2>&1; then
      tail -n 40 "$log" >&2
      echo "pip install failed; full log: $log" >&2
      return 1
    fi
    touch "$stamp"
  fi
}

# ensure_apt COMMAND PACKAGE [COMMAND PACKAGE ...]: install PACKAGE when COMMAND is missing.
ensure_apt() {
  local missing=()
  while [ "$#" -gt 0 ]; do
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || missing+=("$2")
    shift 2
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "==> installing Debian packages: ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_player: the demo player page's npm packages (hls.js), from package-lock.json.
ensure_player() {
  local dir="$ROOT/playgate/demo/player"
  [ -f "$dir/node_modules/hls.js/dist/hls.min.js" ] && return 0
  ensure_apt node nodejs npm npm
  echo "==> installing the player page's npm packages (npm ci in playgate/demo/player)" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
}
