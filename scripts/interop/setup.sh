#!/usr/bin/env bash
# Third-party Chef peers for the interop tests, all on 127.0.0.1:
#   goiardi (Debian), Ruby mixlib-authentication (Debian), pythonchef 0.4.0 (PyPI, in a venv).
#
#   scripts/interop/setup.sh install        install what is missing (apt-get, pip); idempotent
#   scripts/interop/setup.sh check          exit 0 if every peer is usable, else say what is not
#   scripts/interop/setup.sh python         print the venv's python (pythonchef importable)
#   scripts/interop/setup.sh goiardi DIR PORT
#                                           run goiardi in the foreground on 127.0.0.1:PORT with
#                                           auth on and its state in DIR (the caller stops it)
# The venv lives in $CHEF_SYNC_PEERS (default /tmp/chef-sync-peers/venv).
set -euo pipefail

VENV=${CHEF_SYNC_PEERS:-/tmp/chef-sync-peers}/venv
PY=$VENV/bin/python

have_python() { [ -x "$PY" ] && "$PY" -c 'import chef, requests' >/dev/null 2>&1; }

case "${1:-}" in
  install)
    need=()
    for p in goiardi ruby ruby-mixlib-authentication python3-venv; do
      dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
    done
    if [ ${#need[@]} -gt 0 ]; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y "${need[@]}" || { apt-get update && apt-get install -y "${need[@]}"; }
    fi
    if ! have_python; then
      # Debian's interpreter on purpose: a pyenv shim may come first in PATH. pychef 0.3.0 and
      # its other forks do not import on Python 3.11; pythonchef 0.4.0 does.
      /usr/bin/python3 -m venv "$VENV"
      "$VENV/bin/pip" install -q 'pythonchef==0.4.0'
    fi
    ;;
  check)
    missing=()
    command -v goiardi >/dev/null 2>&1 || missing+=("goiardi")
    ruby -e 'require "openssl"; require "mixlib/authentication/signedheaderauth"' >/dev/null 2>&1 || missing+=("ruby-mixlib-authentication")
    have_python || missing+=("pythonchef in $VENV")
    if [ ${#missing[@]} -gt 0 ]; then
      echo "missing: ${missing[*]} (run scripts/interop/setup.sh install as root)" >&2
      exit 1
    fi
    ;;
  python)
    have_python || { echo "pythonchef is not installed in $VENV" >&2; exit 1; }
    echo "$PY"
    ;;
  goiardi)
    dir=${2:?state directory}
    port=${3:?port}
    mkdir -p "$dir/conf" "$dir/files"
    # -H: without it goiardi builds the URLs it hands out from the kernel hostname.
    exec goiardi -I 127.0.0.1 -H 127.0.0.1 -P "$port" -A \
      --conf-root="$dir/conf" --local-filestore-dir="$dir/files" -g info
    ;;
  *)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
