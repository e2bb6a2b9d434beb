# Shared by scripts/*: a virtual environment with the project, and Debian packages on demand.
# shellcheck shell=bash
set -euo pipefail
# Physical path: scripts reached through a symlinked folder still find their own checkout.
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
VENV="${PLAYGATE_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

ensure_venv() {
  local extras="${1:-}"
  local stamp="$VENV/.installed${extras:+-$extras}"
  if [ ! -x "$PY" ]; then
    echo "==> creating virtual environment in $VENV" >&2
    python3 -m venv "$VENV"
  fi
  # The test extras include the demo's (moto), and any install has the base: a fresher install
  # of a superset will do.
  local covering=("$stamp")
  case "$extras" in
    "") covering+=("$VENV/.installed-demo" "$VENV/.installed-test") ;;
    demo) covering+=("$VENV/.installed-test") ;;
  esac
  local fresh
  for fresh in "${covering[@]}"; do
    [ -f "$fresh" ] && [ ! "$ROOT/pyproject.toml" -nt "$fresh" ] && return 0
  done
  # Install when the project's requirements changed since the last install.
  echo "==> installing playgate${extras:+[$extras]} into $VENV" >&2
  local log="$VENV/pip-install.log"
  if ! { "$PY" -m pip install --disable-pip-version-check --upgrade pip &&
         "$PY" -m pip install --disable-pip-version-check -e "$ROOT${extras:+[$extras]}"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "pip install failed; full log: $log" >&2
    return 1
  fi
  touch "$stamp"
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
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends "${missing[@]}"
}

# ensure_apt_packages PACKAGE...: install the packages dpkg does not have (for those that bring
# a library or an nginx module, not a command).
ensure_apt_packages() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$package")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "==> installing Debian packages: ${missing[*]}" >&2
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends "${missing[@]}"
}

# apt_get ARGS...: apt-get that waits (bounded) when another apt-get or dpkg holds the lock, as
# unattended-upgrades does on a fresh cloud VM, and says so instead of failing with a raw error.
APT_LOCK_TIMEOUT="${PLAYGATE_APT_LOCK_TIMEOUT:-600}"
apt_get() {
  local sudo="" log waited=0 deadline=$((SECONDS + APT_LOCK_TIMEOUT))
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log="$(mktemp)"
  # First try without waiting, so a held lock is announced before the wait, not after it.
  # `apt-get install` waits by itself (DPkg::Lock::Timeout); `update` does not: poll it.
  while ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get \
      -o DPkg::Lock::Timeout="$((waited ? (deadline > SECONDS ? deadline - SECONDS : 1) : 0))" "$@" >"$log" 2>&1; do
    if ! grep -qE "Could not get lock|Unable to acquire the dpkg frontend lock" "$log"; then
      tail -n 20 "$log" >&2
      echo "apt-get $1 failed (output above)" >&2
      rm -f "$log"
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "apt-get $1: another package manager still holds the dpkg lock after" \
        "${APT_LOCK_TIMEOUT} s; wait for it to finish (ps -C apt-get,dpkg,unattended-upgr)," \
        "then run this again, or set PLAYGATE_APT_LOCK_TIMEOUT=<seconds> to wait longer" >&2
      rm -f "$log"
      return 1
    fi
    if [ "$waited" -eq 0 ]; then
      echo "==> another apt-get or dpkg (unattended-upgrades?) holds the package lock;" \
        "waiting up to ${APT_LOCK_TIMEOUT} s for it (PLAYGATE_APT_LOCK_TIMEOUT)" >&2
      waited=1
    else
      sleep 2
    fi
  done
  rm -f "$log"
}

# ensure_player: the demo player page's npm packages (hls.js, dash.js), from package-lock.json.
ensure_player() {
  local dir="$ROOT/playgate/demo/player"
  [ -f "$dir/node_modules/hls.js/dist/hls.min.js" ] &&
    [ -f "$dir/node_modules/dashjs/dist/dash.all.min.js" ] && return 0
  ensure_apt node nodejs npm npm
  echo "==> installing the player page's npm packages (npm ci in playgate/demo/player)" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
}
