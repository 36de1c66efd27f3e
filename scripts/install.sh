#!/bin/sh
# Installs echod from a GitHub release, verified against the release's SHA256SUMS.
#
#   curl -fsSL https://github.com/echod/echod/releases/latest/download/install.sh | sh
#   sh install.sh [--version 0.1.0] [--prefix DIR] [--service [-- SERVE OPTIONS]]
#
# --prefix defaults to /usr/local/bin when it is writable (or when run as root),
# else ~/.local/bin. --service then runs `echod service install` (as root).
# ECHOD_REPO (owner/name) or ECHOD_BASE_URL (a mirror of .../releases) say where from.
set -eu

repo="${ECHOD_REPO:-echod/echod}"
base_url="${ECHOD_BASE_URL:-https://github.com/${repo}/releases}"
version="latest"
prefix=""
service=0

fail() {
  echo "install.sh: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --version) [ $# -ge 2 ] || fail "--version needs a value (e.g. --version 0.1.0)"; version="${2#v}"; shift 2 ;;
    --prefix) [ $# -ge 2 ] || fail "--prefix needs a directory"; prefix="$2"; shift 2 ;;
    --service) service=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown option $1 (see --help)" ;;
  esac
done

os=$(uname -s)
case "$os" in
  Linux) os_part="unknown-linux-gnu" ;;
  Darwin) os_part="apple-darwin" ;;
  MINGW*|MSYS*|CYGWIN*|Windows*) fail "on Windows, use install.ps1 (PowerShell)" ;;
  *) fail "unsupported operating system '$os': echod is built for Linux, macOS and Windows" ;;
esac
arch=$(uname -m)
case "$arch" in
  x86_64|amd64) arch_part="x86_64" ;;
  aarch64|arm64) arch_part="aarch64" ;;
  *) fail "unsupported architecture '$arch': echod is built for x86_64 and aarch64" ;;
esac
target="${arch_part}-${os_part}"

if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fsSL -o "$2" "$1"; }
  latest_url() { curl -fsSLI -o /dev/null -w '%{url_effective}' "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -q -O "$2" "$1"; }
  latest_url() { wget -S --spider "$1" 2>&1 | sed -n 's/^ *[Ll]ocation: *//p' | tail -n 1 | tr -d '\r'; }
else
  fail "neither curl nor wget is installed"
fi

if [ "$version" = "latest" ]; then
  tag_url=$(latest_url "${base_url}/latest") || fail "cannot reach ${base_url}/latest"
  version="${tag_url##*/}"
  version="${version#v}"
  [ -n "$version" ] && [ "$version" != "latest" ] || fail "cannot tell the latest version from ${tag_url}"
fi

if [ -z "$prefix" ]; then
  if [ "$(id -u)" = 0 ] || [ -w /usr/local/bin ]; then prefix=/usr/local/bin; else prefix="$HOME/.local/bin"; fi
fi

name="echod-${version}-${target}"
work=$(mktemp -d "${TMPDIR:-/tmp}/echod-install.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

echo "downloading echod ${version} for ${target}"
fetch "${base_url}/download/v${version}/${name}.tar.gz" "$work/${name}.tar.gz" \
  || fail "cannot download ${name}.tar.gz (is ${version} released for ${target}?)"
fetch "${base_url}/download/v${version}/SHA256SUMS" "$work/SHA256SUMS" \
  || fail "cannot download SHA256SUMS for ${version}"

expected=$(awk -v f="${name}.tar.gz" '$2 == f || $2 == "*" f { print $1 }' "$work/SHA256SUMS")
[ -n "$expected" ] || fail "SHA256SUMS has no entry for ${name}.tar.gz; refusing to install"
if command -v sha256sum >/dev/null 2>&1; then
  actual=$(sha256sum "$work/${name}.tar.gz" | awk '{ print $1 }')
else
  actual=$(shasum -a 256 "$work/${name}.tar.gz" | awk '{ print $1 }')
fi
[ "$actual" = "$expected" ] \
  || fail "checksum mismatch for ${name}.tar.gz (expected ${expected}, got ${actual}); refusing to install"

tar -xzf "$work/${name}.tar.gz" -C "$work"
[ -f "$work/${name}/echod" ] || fail "the archive has no ${name}/echod"
mkdir -p "$prefix" || fail "cannot create ${prefix}"
cp "$work/${name}/echod" "$work/echod.new"
chmod 755 "$work/echod.new"
mv -f "$work/echod.new" "$prefix/echod" || fail "cannot write ${prefix}/echod (try sudo, or --prefix)"
echo "installed echod ${version} to ${prefix}/echod"
case ":$PATH:" in
  *":$prefix:"*) ;;
  *) echo "note: ${prefix} is not on your PATH" ;;
esac

if [ "$service" = 1 ]; then
  "$prefix/echod" service install -- "$@"
fi
