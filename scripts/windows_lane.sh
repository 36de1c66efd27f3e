#!/usr/bin/env bash
# The Windows lane: runs echod's test suites with the Windows build of Deno
# under Wine 10, on this Linux machine, so that every change is checked on
# Windows semantics (`::` IPv6-only, Windows error codes and paths).
#
#   bash scripts/windows_lane.sh [setup|test [TEST ARGS…]|faults|smoke|exec PROGRAM [ARGS…]|all]   (default: all)
#
# Wine 10 comes from a Debian 13 (trixie) root made with debootstrap (Debian
# 12's Wine 8 cannot run Deno); the Windows Deno comes from the npm package
# @deno/win32-x64 and runs from a module cache the Linux Deno fills (it
# cannot fetch npm packages through this machine's TLS set-up). Everything
# is kept under .windows-lane/ (git-ignored), made once and reused.
#
# When the lane cannot be set up (not root, no apt-get, no network), it says
# why and exits 0 after printing "windows lane: skipped: REASON", so CI shows
# the skip instead of passing silently.
set -uo pipefail
cd "$(dirname "$0")/.."

LANE="$PWD/.windows-lane"
ROOT="$LANE/trixie"
CACHE="$ROOT/root/wp/drive_c/users/root/AppData/Local/deno"
WIN_DENO_VERSION=2.9.5 # the newest @deno/win32-x64 on the npm registry
LINUX_DENO=(npx -y deno@2.9.6)
# The Debian mirror: WINDOWS_LANE_MIRROR, else the first Debian archive in this
# machine's own apt sources (deb822 or one-line form).
MIRROR="${WINDOWS_LANE_MIRROR:-$(grep -hoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1 | tr -d ' ')}"
step="${1:-all}"

skip() {
  echo "windows lane: skipped: $*"
  exit 0
}

setup() {
  [ "$(id -u)" = 0 ] || skip "needs root (debootstrap and chroot)"
  command -v apt-get >/dev/null || skip "needs apt-get (Debian) to make a trixie root"
  [ -n "$MIRROR" ] || skip "no Debian mirror in /etc/apt sources; set WINDOWS_LANE_MIRROR"
  if [ ! -x "$ROOT/usr/lib/wine/wine64" ]; then
    echo "windows lane: making a Debian trixie root with Wine 10 in $ROOT (about 3 minutes, once)"
    command -v debootstrap >/dev/null || {
      apt-get update -qq >/dev/null 2>&1
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null 2>&1
    } || skip "could not install debootstrap"
    unmounts
    rm -rf --one-file-system "$ROOT"
    mkdir -p "$ROOT"
    debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" >"$LANE/debootstrap.log" 2>&1 ||
      skip "debootstrap trixie failed (see $LANE/debootstrap.log)"
    mounts
    chroot "$ROOT" apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive chroot "$ROOT" apt-get install -y -qq --no-install-recommends \
      wine64 wine ca-certificates >"$LANE/wine.log" 2>&1 || skip "installing Wine in the trixie root failed (see $LANE/wine.log)"
  fi
  if [ ! -f "$LANE/deno.exe" ]; then
    (cd "$LANE" && npm pack -s "@deno/win32-x64@$WIN_DENO_VERSION" >/dev/null 2>&1 &&
      tar -xzf deno-win32-x64-*.tgz package/deno.exe && mv package/deno.exe . && rm -rf package deno-win32-x64-*.tgz) ||
      skip "could not fetch @deno/win32-x64@$WIN_DENO_VERSION from the npm registry"
  fi
  mounts
  local version
  version=$(wine deno.exe --version | head -n 1) || skip "the Windows Deno does not run under Wine"
  # The Windows Deno reads modules from a cache the Linux one fills: its
  # default one (%LOCALAPPDATA%\deno), which a service started by Wine's
  # service manager (with an environment of its own) finds too.
  DENO_DIR="$CACHE" "${LINUX_DENO[@]}" cache --quiet --lock=deno.dev.lock main.ts lib/serve/worker_thread.ts lib/bench/load_worker.ts \
    tests/*.ts tests/faults/*.ts scripts/smoke.ts scripts/lint_workflows.ts >/dev/null 2>&1 || skip "could not fill the module cache"
  echo "windows lane: ready ($version)"
}

# Never left behind: a bind mount of the checkout inside the root would make
# removing the root remove the checkout.
unmounts() {
  for dir in work dev proc; do
    mountpoint -q "$ROOT/$dir" 2>/dev/null && umount -l "$ROOT/$dir"
  done
  return 0
}
trap unmounts EXIT

mounts() {
  mkdir -p "$ROOT/proc" "$ROOT/dev" "$ROOT/work"
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
  mountpoint -q "$ROOT/work" || mount --bind "$PWD" "$ROOT/work"
}

# Runs a Windows program in the trixie root, from the checkout (Z:\work):
# deno.exe from .windows-lane, anything else (sc.exe, cmd.exe) from Wine's system32.
wine() {
  local program="$1"
  shift
  [ "$program" = deno.exe ] && program='Z:\work\.windows-lane\deno.exe'
  chroot "$ROOT" env WINEPREFIX=/root/wp WINEDEBUG=-all HOME=/root XDG_RUNTIME_DIR=/tmp \
    NO_COLOR=1 \
    sh -c 'cd /work && exec /usr/lib/wine/wine64 "$@"' wine "$program" "$@"
}

run_suite() {
  local what="$1" junit="$2"
  shift 2
  setup
  echo "windows lane: $what under Wine"
  keep_prefix
  ECHOD_TEST_DENO_FLAGS=--cached-only wine deno.exe test --cached-only --lock=deno.dev.lock --allow-net --allow-run --allow-read --allow-write --allow-env \
    --allow-sys=hostname,uid --allow-ffi --junit-path="$junit" "$@"
  local status=$?
  end_prefix
  return $status
}

# An ordinary Wine process kept alive while services run: without one, Wine
# shuts the prefix down and stops every service in it about a second later.
keep_prefix() {
  wine deno.exe eval --cached-only "setTimeout(() => {}, 3_600_000)" >/dev/null 2>&1 &
  KEEPER=$!
}

end_prefix() {
  kill "$KEEPER" 2>/dev/null
  chroot "$ROOT" env WINEPREFIX=/root/wp /usr/lib/wine/wineserver -k 2>/dev/null
  return 0
}

smoke() {
  setup
  echo "windows lane: the release smoke test under Wine"
  keep_prefix
  wine deno.exe run --cached-only -A scripts/smoke.ts --deno --cached-only
  local status=$?
  end_prefix
  return $status
}

# tests/posix/ and tests/faults/posix/ test what Windows does not have
# (systemd, install.sh, SO_REUSEPORT, POSIX signals, ulimit, mounts, Docker,
# LD_PRELOAD): the lane leaves them out, and says so.
SUITE=(--ignore=tests/faults,tests/posix tests/)
FAULTS=(--ignore=tests/faults/posix tests/faults/)
posix_note() {
  echo "windows lane: not run here: $1 (tests of what Windows does not have; Linux and macOS run them)"
}

case "$step" in
setup) setup ;;
exec) # a Windows program with its arguments, e.g. exec sc.exe query echod
  shift
  setup >/dev/null
  wine "$@"
  ;;
smoke) smoke ;;
test)
  shift
  if [ $# -gt 0 ]; then
    run_suite "$*" '.test-results\windows-some.xml' "$@" # e.g. --filter NAME tests/x_test.ts
  else
    posix_note tests/posix/
    run_suite "the suite" '.test-results\windows.xml' "${SUITE[@]}"
  fi
  ;;
faults)
  posix_note tests/faults/posix/
  run_suite "the fault suite" '.test-results\windows-faults.xml' "${FAULTS[@]}"
  ;;
all)
  posix_note "tests/posix/ and tests/faults/posix/"
  run_suite "the suite" '.test-results\windows.xml' "${SUITE[@]}"
  a=$?
  run_suite "the fault suite" '.test-results\windows-faults.xml' "${FAULTS[@]}"
  b=$?
  smoke
  c=$?
  [ $a -eq 0 ] && [ $b -eq 0 ] && [ $c -eq 0 ]
  ;;
*)
  echo "usage: bash scripts/windows_lane.sh [setup|test [TEST ARGS…]|faults|smoke|exec PROGRAM [ARGS…]|all]"
  exit 2
  ;;
esac
