#!/usr/bin/env bash
# One-time machine set-up for kiln's main job and its tests (Debian, run as root or with sudo):
# the packages the tests use, the static runner build, and the local base images
# (nothing is pulled from a registry: bases are made here, see scripts/make-bases.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
need=()
# chromium: the HTML report's test loads it in a real browser (headless).
# python3-cryptography, iproute2: the TLS tests make a test CA and a network namespace.
for pkg in podman busybox-static debootstrap docker-registry skopeo runc xz-utils apache2-utils chromium python3-cryptography iproute2; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi

# docker buildx: Debian's docker-buildx package is in the Debian 13 archive only and
# installs on Debian 12 as it is (it depends on libc6 >= 2.34 alone); fetched with a
# one-off source list that leaves the machine's apt sources untouched.
if ! docker buildx version >/dev/null 2>&1; then
  d=$(mktemp -d); mkdir -p "$d/lists/partial"
  echo 'deb http://deb.debian.org/debian trixie main' > "$d/sources.list"
  o="-o Dir::Etc::sourcelist=$d/sources.list -o Dir::Etc::sourceparts=/dev/null -o Dir::State::Lists=$d/lists"
  $sudo apt-get $o update -qq && (cd "$d" && $sudo apt-get $o download docker-buildx) && $sudo dpkg -i "$d"/docker-buildx_*.deb
  rm -rf "$d"
fi

docker info >/dev/null 2>&1 || { echo "setup: the Docker Engine does not answer (is dockerd running?)" >&2; exit 1; }

bash scripts/make-bases.sh

# The in-image runner: a static binary, so it runs in any Linux image.
RUSTFLAGS='-C target-feature=+crt-static' \
  cargo build --locked --release -p kiln-runner --target x86_64-unknown-linux-gnu
