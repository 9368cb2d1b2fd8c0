#!/usr/bin/env bash
# Installs the Debian packages the end-to-end tests run for real, and what `npm ci` builds the sendfile addon
# with (make, g++, python3 for node-gyp); idempotent; needs root when missing.
set -euo pipefail
need=()
for pair in containerd:containerd ctr:containerd docker-registry:docker-registry skopeo:skopeo umoci:umoci \
            runc:runc busybox:busybox-static ip:iproute2 tc:iproute2 curl:curl openssl:openssl strace:strace zstd:zstd chromium:chromium htpasswd:apache2-utils iptables:iptables \
            make:make g++:g++ python3:python3; do
  cmd="${pair%%:*}"; pkg="${pair##*:}"
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || [ -x "/sbin/$cmd" ] || need+=("$pkg")
done
[ -e /bin/busybox ] || need+=(busybox-static)
if [ "${#need[@]}" -eq 0 ]; then exit 0; fi
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
