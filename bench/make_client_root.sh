#!/usr/bin/env bash
# A root file system of another Debian release for the benchmark's clients:
#
#     bench/make_client_root.sh [ROOT]          # build (once) and mount; prints ROOT
#     .venv/bin/python bench/check_throughput.py --client-root ROOT
#     bench/make_client_root.sh --umount [ROOT]
#
# Why: a TLS check's CPU is mostly OpenSSL's, and which OpenSSL a client gets is the
# distribution's choice (Debian 12: 3.0, Debian 13: 3.5). With --client-root the same
# machine, kernel and Dovecot measure the clients as that release ships them: its Python
# and OpenSSL for pop3watch, its check_pop (linked to the same OpenSSL) and its
# blackbox_exporter. Dovecot and the harness stay the machine's own.
#
# Needs root (debootstrap, mount, chroot) and the Debian mirror and PyPI.
set -euo pipefail

umount_only=0
if [ "${1:-}" = "--umount" ]; then
    umount_only=1
    shift
fi
ROOT=${1:-/srv/pop3watch-client-root}
SUITE=${SUITE:-trixie}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV=/opt/pop3watch-venv # bench/check_throughput.py's CLIENT_ROOT_PYTHON lives here

# The places the clients share with the harness: the kernel's views, the work directory
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
    echo "make_client_root.sh: needs root (debootstrap, mount, chroot)" >&2
    exit 1
fi
if [ "$umount_only" = 1 ]; then
    unmount_all
    exit 0
fi

if [ ! -x "$ROOT/usr/bin/python3" ]; then
    command -v debootstrap >/dev/null || apt-get install -y debootstrap >/dev/null
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-dev,gcc,monitoring-plugins-basic,prometheus-blackbox-exporter,ca-certificates \
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

# pip inside the root resolves and trusts as the machine does (a registry proxy may use
# the machine's own certificate authorities).
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/host-ca-certificates.crt"
if [ ! -x "$ROOT$VENV/bin/python" ]; then
    chroot "$ROOT" python3 -m venv "$VENV"
fi
if ! chroot "$ROOT" "$VENV/bin/python" -c "import pop3watch, uvloop" 2>/dev/null; then
    ca=/etc/ssl/certs/host-ca-certificates.crt
    chroot "$ROOT" env -u PIP_FIND_LINKS PIP_CERT=$ca SSL_CERT_FILE=$ca REQUESTS_CA_BUNDLE=$ca \
        "$VENV/bin/pip" install --quiet --disable-pip-version-check -e "$REPO"
fi
echo "$ROOT"
