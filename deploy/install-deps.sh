#!/usr/bin/env bash
# Installs the Debian packages Playground needs, only those missing (run as root).
#   deploy/install-deps.sh run    what `make run` needs
#   deploy/install-deps.sh test   that, plus what the tests need (headless Chromium, CJK fonts, asciinema, PostgreSQL, nginx)
#   deploy/install-deps.sh bench  that, plus the peers the benchmarks compare against (Docker, wrk)
set -euo pipefail

# debootstrap builds Debian images; skopeo and umoci import OCI images and docker save archives;
# lxcfs serves each sandbox its own /proc/meminfo, cpuinfo, stat, uptime (the agent runs it);
# gcc and libc6-dev compile the docker image's hello-world (recipes/docker/hello.c, static) when
# `make run` builds that image, the default one.
# docker-registry (Distribution 2.8) is the registry mirror's store (docs/registry.md).
run_packages=(runc redis-server busybox-static python3-venv iproute2 nftables nodejs npm debootstrap skopeo umoci lxcfs
  gcc libc6-dev docker-registry)
# asciinema plays the workshops' terminal recordings back in their tests (asciinema cat); prometheus brings
# promtool, which checks /metrics's text and deploy/prometheus/alerts.yml (its server is never started).
# postgresql: 'make test-postgres' runs the tests that use the database on a server of its own, started
# from a temp dir with the package's binaries (tests/pgkit.py); the package's own cluster is never started.
# nginx, openssl and systemd (systemd-analyze): tests/integration/test_deployment.py serves a stack through
# deploy/nginx/playground.conf (an nginx of its own, from a temp dir) with certificates it makes, and
# verifies deploy/systemd/playground.service; the bench also measures port links against nginx.
test_packages=(chromium fonts-noto-cjk sqlite3 asciinema prometheus postgresql nginx openssl systemd)
# wrk loads the port links and nginx in the bench.
bench_packages=(docker.io wrk)

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

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# Debian's nginx package starts nginx on port 80 once installed, and leaves it running; the bench
# runs its own nginx from a temporary directory, so nginx is installed with no service started: a
# /usr/sbin/policy-rc.d that exits 101 ("action forbidden": invoke-rc.d and deb-systemd-invoke
# then start nothing, see /usr/share/doc/init-system-helpers/README.policy-rc.d.gz), written only
# if the host has none (a host's own policy, e.g. a container's, is kept as it is) and removed
# afterwards, also when the install fails or is interrupted. Debian's docker-registry likewise (its
# service would serve a writable registry on port 5000 of every address), prometheus (a server on
# port 9090 of every address; the tests use its promtool) and postgresql (its cluster on port 5432; the
# tests start their own server). Other packages (Docker's daemon) start as their packages say.
policy=/usr/sbin/policy-rc.d
install_without_starting() {
  if [ -e "$policy" ]; then
    apt_install "$@"
    return
  fi
  trap 'rm -f "$policy"' EXIT
  trap 'exit 130' INT TERM HUP
  printf '#!/bin/sh\n# Playground deploy/install-deps.sh: no service starts while nginx is installed.\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  apt_install "$@"
  rm -f "$policy"
  trap - EXIT INT TERM HUP
}

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  apt-get update -q
  started=() not_started=()
  for package in "${missing[@]}"; do
    case "$package" in
      nginx | docker-registry | prometheus | postgresql) not_started+=("$package") ;;
      *) started+=("$package") ;;
    esac
  done
  if [ ${#started[@]} -gt 0 ]; then apt_install "${started[@]}"; fi
  if [ ${#not_started[@]} -gt 0 ]; then install_without_starting "${not_started[@]}"; fi
  # Debian's docker-registry service is a writable registry on port 5000 of every address: never
  # started at boot either (the launcher runs its own, on loopback, as the mirror's store).
  # Debian's prometheus likewise (a server on port 9090 of every address): the tests need its promtool only.
  # Debian's postgresql likewise (its main cluster on port 5432): the tests start a server of their own.
  for service in docker-registry prometheus postgresql; do
    if [[ " ${missing[*]} " == *" $service "* ]]; then
      if [ -d /run/systemd/system ]; then systemctl disable --now "$service.service" || true; fi
      if command -v update-rc.d >/dev/null && [ -e "/etc/init.d/$service" ]; then
        update-rc.d "$service" disable || true
      fi
    fi
  done
fi
