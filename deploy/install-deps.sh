#!/usr/bin/env bash
# Installs the Debian packages Playground needs, only those missing (run as root).
#   deploy/install-deps.sh run    what `make run` needs
#   deploy/install-deps.sh test   that, plus what the tests need (headless Chromium, CJK fonts)
#   deploy/install-deps.sh bench  that, plus the peers the benchmarks compare against (Docker, nginx, wrk)
set -euo pipefail

# debootstrap builds Debian images; skopeo and umoci import OCI images and docker save archives;
# lxcfs serves each sandbox its own /proc/meminfo, cpuinfo, stat, uptime (the agent runs it);
# gcc and libc6-dev compile the docker image's hello-world (recipes/docker/hello.c, static) when
# `make run` builds that image, the default one.
run_packages=(runc redis-server busybox-static python3-venv iproute2 nftables nodejs npm debootstrap skopeo umoci lxcfs
  gcc libc6-dev)
# docker-registry: a registry on loopback for the image import tests.
test_packages=(chromium fonts-noto-cjk sqlite3 docker-registry)
# nginx and wrk: the port links are measured against nginx proxying the same node port, loaded by wrk.
bench_packages=(docker.io nginx wrk)

case "${1:-run}" in
  run) wanted=("${run_packages[@]}") ;;
  test) wanted=("${run_packages[@]}" "${test_packages[@]}") ;;
  bench) wanted=("${run_packages[@]}" "${test_packages[@]}" "${bench_packages[@]}") ;;
  *) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
  echo "install-deps: must run as root to install Debian packages" >&2
  exit 2
fi

missing=()
for package in "${wanted[@]}"; do
  # Node and npm may come from outside Debian (e.g. NodeSource); accept any working install.
  if [ "$package" = nodejs ] && command -v node >/dev/null; then continue; fi
  if [ "$package" = npm ] && command -v npm >/dev/null; then continue; fi
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$package")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
