#!/usr/bin/env bash
# A root file system of another Debian release (default: Debian 13), to run the tests and
# the benchmark's clients as that release ships them:
#
#     scripts/debian-root.sh [ROOT]            # build (once) and mount; prints ROOT
#     make test-debian13                       # the whole test suite inside it
#     .venv/bin/python bench/check_throughput.py --client-root ROOT
#     scripts/debian-root.sh --umount [ROOT]
#
# Why: what decides a check's verdict and cost is partly the distribution's: its Python
# (3.11 in Debian 12, 3.13 in 13, whose ssl defaults differ), its OpenSSL (3.0, 3.5) and
# the Dovecot the tests talk to (2.3, 2.4, whose configuration syntax differs). The root
# holds that release's Python, OpenSSL, Dovecot, check_pop and blackbox_exporter, and a
# venv (/opt/pop3watch-venv) with this repository installed for development. It shares
# the machine's kernel, network (PostgreSQL on 127.0.0.1), /tmp and the repository.
#
# Needs root (debootstrap, mount, chroot) and the Debian mirror and PyPI.
# Run --umount before deleting ROOT: /tmp and the repository are bind-mounted into it,
# and `rm -rf ROOT` would go through them.
set -euo pipefail

umount_only=0
if [ "${1:-}" = "--umount" ]; then
    umount_only=1
    shift
fi
ROOT=${1:-/srv/pop3watch-debian13}
SUITE=${SUITE:-trixie}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV=/opt/pop3watch-venv # bench/check_throughput.py's CLIENT_ROOT_PYTHON lives here
PACKAGES=python3,python3-venv,python3-dev,gcc,ca-certificates,e2fsprogs,monitoring-plugins-basic,prometheus-blackbox-exporter

# What the root shares with the machine: the kernel's views, the work directory
# (certificates, configs) under /tmp, and the repository at its own path.
MOUNTS=(proc dev tmp "${REPO#/}")

unmount_all() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        if mountpoint -q "$ROOT/${MOUNTS[i]}"; then
            umount -l "$ROOT/${MOUNTS[i]}"
        fi
    done
}

if [ "$(id -u)" != 0 ]; then
    echo "debian-root.sh: needs root (debootstrap, mount, chroot)" >&2
    exit 1
fi
if [ "$umount_only" = 1 ]; then
    unmount_all
    exit 0
fi

if [ ! -x "$ROOT/usr/bin/python3" ]; then
    command -v debootstrap >/dev/null || apt-get install -y debootstrap >/dev/null
    debootstrap --variant=minbase \
        --include="$PACKAGES" \
        "$SUITE" "$ROOT" "$MIRROR"
fi

for m in "${MOUNTS[@]}"; do
    mkdir -p "$ROOT/$m"
    if ! mountpoint -q "$ROOT/$m"; then
        case "$m" in
            proc) mount -t proc proc "$ROOT/proc" ;;
            *) mount --bind "/$m" "$ROOT/$m" ;;
        esac
    fi
done

# Dovecot is installed after debootstrap, with its daemon kept from starting (the tests
# start their own), as scripts/install-debian-deps.sh does on the machine itself.
if [ ! -x "$ROOT/usr/sbin/dovecot" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
    chmod +x "$ROOT/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    chroot "$ROOT" apt-get update -qq
    chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends dovecot-pop3d dovecot-core >/dev/null
fi

# pip inside the root resolves and trusts as the machine does (a registry proxy may use
# the machine's own certificate authorities).
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/host-ca-certificates.crt"
if [ ! -x "$ROOT$VENV/bin/python" ]; then
    chroot "$ROOT" python3 -m venv "$VENV"
fi
if ! chroot "$ROOT" "$VENV/bin/python" -c "import pop3watch, uvloop, trustme, pytest" 2>/dev/null; then
    ca=/etc/ssl/certs/host-ca-certificates.crt
    chroot "$ROOT" env -u PIP_FIND_LINKS PIP_CERT=$ca SSL_CERT_FILE=$ca REQUESTS_CA_BUNDLE=$ca \
        "$VENV/bin/pip" install --quiet --disable-pip-version-check -e "$REPO[dev]"
fi
echo "$ROOT"
