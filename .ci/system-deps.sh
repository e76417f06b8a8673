#!/usr/bin/env bash
# Install the Debian packages the integration tests drive as real servers (testing/):
# Dovecot IMAP, PostgreSQL, Chromium (+ CJK fonts so Chinese pages render in screenshots).
# Idempotent and fast (< 1 s) when everything is present. As root it installs what is missing
# without letting Debian start system daemons (tests run their own on free loopback ports);
# as non-root it prints the missing packages and exits 1.
set -euo pipefail

PACKAGES=(dovecot-imapd postgresql chromium fonts-noto-cjk)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "system-deps: all present (${PACKAGES[*]})"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "system-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install them with:" >&2
    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

# Forbid service starts during the install: dovecot would bind *:143/*:993 and postgresql
# create and start a "main" cluster on :5432 (policy-rc.d exit 101 = "action forbidden").
# Left in place on purpose: this machine only runs test servers we start ourselves.
if [[ ! -x /usr/sbin/policy-rc.d ]] || ! grep -q 'exit 101' /usr/sbin/policy-rc.d; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
fi

# Skip "apt-get update" when the package lists already know every missing package.
if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -q
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

# In case a daemon got started anyway (no policy-rc.d honoured, e.g. systemd without
# invoke-rc.d): stop and disable the system instances; ours run on other ports.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl disable --now dovecot postgresql 2>/dev/null || true
fi
if [[ -f /run/dovecot/master.pid ]]; then
    kill "$(cat /run/dovecot/master.pid)" 2>/dev/null || true
fi
if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _port status _rest; do
        if [[ "$status" == online* ]]; then
            pg_ctlcluster "$version" "$cluster" stop || true
        fi
    done
fi
echo "system-deps: installed ${missing[*]}"
