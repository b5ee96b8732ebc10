#!/usr/bin/env bash
# A no-op re-release (every reference already in the registry) against a `docker push`
# loop over the same tags, in one hyperfine run (docs/performance.md, "Release: no-op").
#
# Starts Debian's docker-registry on a free 127.0.0.1 port (no auth, storage in a
# temporary directory), releases the fixture fleet of tests/fixtures/release/fleet once
# for real (build, validate, push), tags the same references locally for docker push,
# then times both. Everything it made is removed at the end.
#
# Needs: hyperfine, docker-registry, a release build (cargo build --release -p kiln), the
# static runner (tests build it: target/x86_64-unknown-linux-gnu/release/kiln-runner)
# and the busybox base (scripts/make-bases.sh). RUNS (default 10) runs per command.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
kiln=${KILN:-$repo/target/release/kiln}
runner=${KILN_RUNNER:-$repo/target/x86_64-unknown-linux-gnu/release/kiln-runner}
runs=${RUNS:-10}
[ -x "$kiln" ] || { echo "no $kiln: cargo build --release -p kiln" >&2; exit 2; }
[ -x "$runner" ] || { echo "no $runner: see README (kiln-runner)" >&2; exit 2; }

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
host=127.0.0.1:$port
root=kiln-bench.local/release-noop-$$
regpid=
cleanup() {
    [ -n "$regpid" ] && kill "$regpid" 2>/dev/null || true
    mapfile -t mine < <(docker images --format '{{.Repository}}:{{.Tag}}' | grep -E "^($root|$host)/" || true)
    [ ${#mine[@]} -gt 0 ] && docker rmi "${mine[@]}" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/data
http:
  addr: $host
EOF
docker-registry serve "$work/registry.yml" 2>"$work/registry.log" &
regpid=$!
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
    sleep 0.1
done

cp -r "$repo/tests/fixtures/release/fleet" "$work/fleet"
cd "$work/fleet"
git init -q && git add -A && git -c user.email=bench@kiln -c user.name=bench commit -qm fixture
mkdir -p "$work/docker"
echo '{}' > "$work/docker/config.json"
export REGISTRY=$root KILN_VERSION=v1.0.0 KILN_SOURCE=https://example.invalid/kiln-bench \
    KILN_RUNNER=$runner DOCKER_CONFIG=$work/docker

echo "== the real release (build, validate, push)" >&2
"$kiln" release --registry "$host" >/dev/null
refs=$(python3 -c 'import json; print(" ".join(i["reference"] for i in json.load(open("release-manifest.json"))["images"]))')
for r in $refs; do
    path=${r#"$host"/}
    docker tag "$root/${path%:*}:dev" "$r"
done
echo "== $(wc -w <<<"$refs") references; timing" >&2
hyperfine --warmup 2 --runs "$runs" \
    --command-name "kiln release (no-op)" "$kiln release --registry $host" \
    --command-name "docker push loop" "for r in $refs; do docker push -q \$r >/dev/null; done"
"$kiln" release --registry "$host" 2>&1 >/dev/null | tail -1
