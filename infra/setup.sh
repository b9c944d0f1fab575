#!/usr/bin/env bash
# Installs what is missing on this machine, idempotently: Debian packages and the two Python
# environments (from the lock files). `smartrehab setup` then does the rest (jars, metastore,
# Airflow DB, dbt manifest). Safe to run again after an interrupted run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3.11}

need_apt=()
command -v javac >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)  # javac: the SQL endpoint's access check
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
command -v ss >/dev/null 2>&1 || need_apt+=(iproute2)
command -v runuser >/dev/null 2>&1 || need_apt+=(util-linux)
ls /usr/sbin/sshd >/dev/null 2>&1 || need_apt+=(openssh-server)  # tests/unit/exchange: a real SFTP server
# The embedded directory (smartrehab/access/directory.py) and its client tools; python-ldap (Superset's
# AUTH_LDAP) builds against libldap and libsasl2 where no wheel fits.
ls /usr/sbin/slapd >/dev/null 2>&1 || need_apt+=(slapd)
command -v ldapwhoami >/dev/null 2>&1 || need_apt+=(ldap-utils)
ls /usr/include/ldap.h >/dev/null 2>&1 || need_apt+=(libldap2-dev)
ls /usr/include/sasl/sasl.h >/dev/null 2>&1 || need_apt+=(libsasl2-dev)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # tests/integration/test_dashboards_browser.py (Playwright, no browser download)
ls /usr/share/fonts/truetype/wqy/wqy-microhei.ttc >/dev/null 2>&1 || need_apt+=(fonts-wqy-microhei)  # Chinese glyphs in its screenshots
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: these packages are missing and installing them needs root: sudo apt-get install ${need_apt[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  # slapd's own debconf questions are not asked (noninteractive): the system's /etc/ldap instance is left
  # unused, the platform runs its own slapd with its own config under var/ldap.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v "$PY" >/dev/null 2>&1 || { echo "setup: $PY not found; install Python 3.11" >&2; exit 1; }

# A venv is complete once its marker holds the lock file's checksum; anything else is rebuilt.
make_venv() {  # dir lockfile extra-args...
  local dir=$1 lock=$2; shift 2
  local want; want=$(cat "$lock" "$@" 2>/dev/null | sha256sum | cut -c1-16)
  if [ -f "$dir/.lock-sha" ] && [ "$(cat "$dir/.lock-sha")" = "$want" ]; then return 0; fi
  echo "setup: building $dir from $lock (a few minutes the first time)"
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  "$dir/bin/pip" install -q --upgrade pip
  "$dir/bin/pip" install -q -r "$lock"
  echo "$want" > "$dir/.lock-sha"
}
make_venv .venv infra/requirements.lock
.venv/bin/pip install -q --no-deps -e . 2>/dev/null
make_venv .venv-superset infra/requirements-superset.lock
