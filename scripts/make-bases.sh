#!/usr/bin/env bash
# Makes the local base images kiln's fleet and tests build on, pulling nothing
# from any registry (kiln builds with pulling disabled):
#
#   kiln.local/bases/busybox:latest   FROM scratch + busybox-static (fast test fixtures)
#   debian:bookworm-slim              `debootstrap --variant=minbase bookworm` rootfs
#
# and, only when asked (KILN_BASES_ONLY=eval-containers: they need Debian's mirror from
# a build container, so a fresh offline machine is not slowed or failed by them), the
# stand-ins of fixtures/eval-containers/bases.txt, built FROM debian:bookworm-slim into
# Docker's store:
#
#   kiln.local/bases/python:3.12-slim-bookworm   python3, pip, venv, and a CPython 3.12 as
#                                                uv's managed Python (for python:3.12-slim)
#   kiln.local/bases/gosu:bookworm               Debian's gosu at /bundle/bin/gosu
#                                                (for the eval-containers core/gosu)
#
# Each is imported into BOTH stores: Docker's (engine, bake) and podman's (podman
# stores the Debian image as docker.io/library/debian:bookworm-slim, which is what
# `FROM debian:bookworm-slim` resolves to). An image already present with the same
# source (label kiln.base.source = sha256 of the rootfs tarball) is left alone.
#
# Environment:
#   KILN_BASE_INCLUDE   comma-separated Debian packages to bake into the Debian base,
#                       e.g. KILN_BASE_INCLUDE=postgresql. Build containers here cannot
#                       reach Debian's mirror (apt inside `docker run` fails), so a
#                       benchmark that needs a package gets it from the base instead.
#                       The packages are installed by debootstrap on the host.
#   KILN_CACHE_DIR      where the rootfs tarballs are cached (default
#                       ${XDG_CACHE_HOME:-~/.cache}/kiln); a second run reuses them.
#   KILN_DEBIAN_MIRROR  the mirror debootstrap uses (default http://deb.debian.org/debian).
#   KILN_BASES_ONLY     `busybox` or `debian` to make only one of them; `eval-containers`
#                       for the two stand-ins above (and debian:bookworm-slim they need).
#   KILN_BASES_STORES   `docker`, `podman` or `docker podman` (default: the ones present).
#   KILN_CPYTHON312     the prefix of a CPython 3.12 built for Debian 12 (default: the
#                       newest ~/.pyenv/versions/3.12.*), packed into the python stand-in.
set -euo pipefail

cache="${KILN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln}/bases"
mirror="${KILN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
include="${KILN_BASE_INCLUDE:-}"
only="${KILN_BASES_ONLY:-}"
stores="${KILN_BASES_STORES:-}"
if [ -z "$stores" ]; then
  docker info >/dev/null 2>&1 && stores="docker"
  command -v podman >/dev/null 2>&1 && stores="$stores podman"
fi
[ -n "$stores" ] || { echo "make-bases: neither the Docker Engine nor podman is available" >&2; exit 3; }
mkdir -p "$cache"

say() { echo "make-bases: $*" >&2; }

# import <store> <tarball> <name> [--change …]: imports unless the same source is there.
import() {
  local store="$1" tarball="$2" name="$3"; shift 3
  local source; source="sha256:$(sha256sum "$tarball" | cut -d' ' -f1)"
  local have
  have="$($store image inspect --format '{{ index .Config.Labels "kiln.base.source" }}' "$name" 2>/dev/null || true)"
  if [ "$have" = "$source" ]; then
    say "$name already in $store's store"
    return
  fi
  local quiet=(); [ "$store" = podman ] && quiet=(--quiet)
  $store import "${quiet[@]}" --change "LABEL kiln.base.source=$source" "$@" "$tarball" "$name" >/dev/null
  say "imported $name into $store's store"
}

make_busybox() {
  local busybox; busybox="$(command -v busybox || true)"
  [ -n "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' \
    || { say "busybox-static is not installed (apt-get install busybox-static)"; exit 1; }
  local tarball="$cache/busybox-$(sha256sum "$busybox" | cut -c1-16).tar"
  if [ ! -s "$tarball" ]; then
    local root; root="$(mktemp -d)"
    mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root"
    cp "$busybox" "$root/bin/busybox"
    for applet in $("$busybox" --list); do
      [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
    chmod 1777 "$root/tmp"
    tar --numeric-owner --owner=0 --group=0 --mtime=@0 --sort=name -C "$root" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  for store in $stores; do
    import "$store" "$tarball" kiln.local/bases/busybox:latest \
      --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]'
  done
}

make_debian() {
  command -v debootstrap >/dev/null || { say "debootstrap is not installed"; exit 1; }
  local key="bookworm-minbase"
  [ -z "$include" ] || key="$key-$(printf '%s' "$include" | tr ',' '\n' | sort | tr '\n' ',' | sha256sum | cut -c1-12)"
  local tarball="$cache/debian-$key.tar"
  if [ ! -s "$tarball" ]; then
    local root; root="$(mktemp -d)"
    say "debootstrap --variant=minbase bookworm${include:+ --include=$include} (once; cached in $tarball)"
    debootstrap --variant=minbase ${include:+--include="$include"} bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 \
      || { say "debootstrap failed; see $cache/debootstrap.log"; tail -5 "$cache/debootstrap.log" >&2; rm -rf "$root"; exit 1; }
    # Slim it like the official image: no apt lists, caches or docs.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
      "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
    tar --numeric-owner --xattrs -C "$root" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  local changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["bash"]')
  for store in $stores; do
    case "$store" in
      docker) import docker "$tarball" debian:bookworm-slim "${changes[@]}" ;;
      podman) import podman "$tarball" docker.io/library/debian:bookworm-slim "${changes[@]}" ;;
    esac
  done
}

# build_standin <name> <Dockerfile text> [<context dir>]: `docker build` FROM the local
# Debian, pulling nothing; left alone when built from the same Dockerfile and context
# files on the same Debian.
build_standin() {
  local name="$1" dockerfile="$2" context="${3:-}"
  local debian; debian="$(docker image inspect --format '{{.Id}}' debian:bookworm-slim)"
  local files=""
  [ -z "$context" ] || files="$(cd "$context" && find . -type f -printf '%p %s %T@\n' | sort)"
  local source; source="sha256:$(printf '%s\n%s\n%s' "$debian" "$dockerfile" "$files" | sha256sum | cut -d' ' -f1)"
  local have
  have="$(docker image inspect --format '{{ index .Config.Labels "kiln.base.source" }}' "$name" 2>/dev/null || true)"
  if [ "$have" = "$source" ]; then
    say "$name already in docker's store"
    return
  fi
  local from=(-); [ -z "$context" ] || from=(-f - "$context")
  printf '%s\n' "$dockerfile" | DOCKER_BUILDKIT=1 docker build -q --label "kiln.base.source=$source" -t "$name" "${from[@]}" >/dev/null \
    || { say "building $name failed (it needs Debian's mirror from a build container)"; exit 1; }
  say "built $name into docker's store"
}

# cpython312_context: a build context holding python.tar, a CPython 3.12 in the layout
# python-build-standalone's install_only archives have (python/bin/python3.12,
# python/lib/…), and its version in VERSION. uv 0.5.14 (the fleet's) checks every
# download against its built-in checksums and reads no custom download list, so an
# air-gapped site cannot mirror a CPython of its own; uv does take an interpreter
# already in UV_PYTHON_INSTALL_DIR under its key (cpython-3.12.1-linux-x86_64-gnu),
# and `uv python install 3.12` then has nothing to fetch.
cpython312_context() {
  local prefix="${KILN_CPYTHON312:-}"
  if [ -z "$prefix" ]; then
    prefix="$(ls -d "$HOME"/.pyenv/versions/3.12.* 2>/dev/null | sort -V | tail -1 || true)"
  fi
  [ -n "$prefix" ] && [ -x "$prefix/bin/python3.12" ] \
    || { say "no CPython 3.12 here (set KILN_CPYTHON312 to the prefix of one built for Debian 12)"; exit 1; }
  local version; version="$("$prefix/bin/python3.12" -c 'import platform; print(platform.python_version())')"
  local context="$cache/cpython-$version-$(printf '%s' "$prefix" | sha256sum | cut -c1-12)"
  if [ ! -s "$context/python.tar" ]; then
    mkdir -p "$context"
    # The test suite is a third of it and nothing here runs it.
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
      --exclude="lib/python3.12/test" --exclude="__pycache__" \
      --transform "s|^\.|python|" -C "$prefix" -cf "$context/python.tar.tmp" .
    mv "$context/python.tar.tmp" "$context/python.tar"
    printf '%s\n' "$version" > "$context/VERSION"
  fi
  printf '%s\n' "$context"
}

make_eval_containers() {
  case " $stores " in *" docker "*) ;; *) say "the eval-containers stand-ins go to Docker's store, which is not here"; exit 3 ;; esac
  stores=docker make_debian
  local context; context="$(cpython312_context)"
  local version; version="$(cat "$context/VERSION")"
  # Debian's Python 3.11 stays `python` (agent-base-python's `pip install uv` uses it);
  # the 3.12 is where setup-uv-venv.sh's UV_PYTHON_INSTALL_DIR looks. Built with
  # --enable-shared (pyenv's default), it finds libpython through ld.so.conf.
  local managed="/opt/uv-python/cpython-$version-linux-x86_64-gnu"
  build_standin kiln.local/bases/python:3.12-slim-bookworm "FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip python3-venv ca-certificates \\
 && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED \\
 && ln -s /usr/bin/python3 /usr/local/bin/python && ln -s /usr/bin/pip3 /usr/local/bin/pip \\
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
ADD python.tar /opt/uv-python/
RUN mv /opt/uv-python/python $managed \\
 && echo $managed/lib > /etc/ld.so.conf.d/uv-python.conf && ldconfig \\
 && ln -s $managed/bin/python3.12 /usr/local/bin/python3.12 \\
 && $managed/bin/python3.12 -c 'import ssl, sqlite3, ctypes, venv'
CMD [\"python3\"]" "$context"
  build_standin kiln.local/bases/gosu:bookworm 'FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gosu \
 && mkdir -p /bundle/bin && cp /usr/sbin/gosu /bundle/bin/gosu \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*'
}

case "$only" in
  "") make_busybox; make_debian ;;
  busybox) make_busybox ;;
  debian) make_debian ;;
  eval-containers) make_eval_containers ;;
  *) say "KILN_BASES_ONLY must be busybox, debian or eval-containers, not $only"; exit 2 ;;
esac
