#!/bin/sh
# Installs msgbus from a GitHub release (or a mirror, or a local folder of release assets):
#
#   curl -fsSL https://github.com/OWNER/msgbus/releases/latest/download/install.sh | sh
#   wget -qO- https://github.com/OWNER/msgbus/releases/latest/download/install.sh | sh -s -- --prefix /opt/msgbus
#
# Options (also as environment variables):
#   --prefix DIR      install DIR/bin/msgbus          MSGBUS_INSTALL_PREFIX
#                     (default: /usr/local as root, else ~/.local)
#   --version vX.Y.Z  that release, not the latest    MSGBUS_INSTALL_VERSION
#   --base-url URL    where the release assets are:   MSGBUS_INSTALL_BASE
#                     https://…, file:///dir or a plain path to a folder with SHA256SUMS and the archives
#   --target NAME     skip detection: linux-x64, linux-x64-baseline, linux-x64-musl, linux-arm64,
#                     linux-arm64-musl, darwin-x64, darwin-arm64 (the binary is then not run)
#   -h, --help
# Detection can be overridden (for tests, or a machine that is detected wrongly):
#   MSGBUS_INSTALL_OS=linux|darwin  MSGBUS_INSTALL_ARCH=x64|arm64  MSGBUS_INSTALL_LIBC=glibc|musl
#   MSGBUS_INSTALL_CPUINFO=FILE (read instead of /proc/cpuinfo)  MSGBUS_INSTALL_DOWNLOADER=curl|wget
#
# POSIX sh (dash, busybox ash, bash, zsh); needs curl or wget, tar, gzip (or xz), and sha256sum
# or shasum. It checks the archive against SHA256SUMS before it installs anything.

set -eu

REPOSITORY="OWNER/msgbus" # build.ts puts the real owner/name here when it builds a release

say() { printf '%s\n' "msgbus install: $*"; }
die() {
  printf '%s\n' "msgbus install: error: $*" >&2
  exit 1
}

usage() {
  cat <<'EOF'
usage: install.sh [--prefix DIR] [--version vX.Y.Z] [--base-url URL|DIR] [--target NAME]
  curl -fsSL https://github.com/OWNER/msgbus/releases/latest/download/install.sh | sh -s -- [options]
  --prefix DIR      install DIR/bin/msgbus (default /usr/local as root, else ~/.local)   MSGBUS_INSTALL_PREFIX
  --version vX.Y.Z  that release instead of the latest                                   MSGBUS_INSTALL_VERSION
  --base-url URL    a mirror or a folder of release assets (https://, file://, a path)   MSGBUS_INSTALL_BASE
  --target NAME     no detection: linux-x64, linux-x64-baseline, linux-x64-musl, linux-arm64,
                    linux-arm64-musl, darwin-x64, darwin-arm64
Detection overrides: MSGBUS_INSTALL_OS=linux|darwin MSGBUS_INSTALL_ARCH=x64|arm64
  MSGBUS_INSTALL_LIBC=glibc|musl MSGBUS_INSTALL_CPUINFO=FILE MSGBUS_INSTALL_DOWNLOADER=curl|wget
EOF
}

# ---- options ----

prefix=${MSGBUS_INSTALL_PREFIX:-}
version=${MSGBUS_INSTALL_VERSION:-}
base=${MSGBUS_INSTALL_BASE:-}
target=
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --version) [ $# -ge 2 ] || die "--version needs a version (v1.2.3)"; version=$2; shift 2 ;;
    --version=*) version=${1#*=}; shift ;;
    --base-url) [ $# -ge 2 ] || die "--base-url needs a URL or a folder"; base=$2; shift 2 ;;
    --base-url=*) base=${1#*=}; shift ;;
    --target) [ $# -ge 2 ] || die "--target needs a name"; target=$2; shift 2 ;;
    --target=*) target=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help: --prefix DIR, --version vX.Y.Z, --base-url URL, --target NAME)" ;;
  esac
done

case $version in
  '' | latest) version= ;;
  v[0-9]*) ;;
  [0-9]*) version=v$version ;;
  *) die "--version takes a release tag such as v1.2.3, not '$version'" ;;
esac

if [ -z "$base" ]; then
  if [ -n "$version" ]; then base="https://github.com/$REPOSITORY/releases/download/$version"
  else base="https://github.com/$REPOSITORY/releases/latest/download"; fi
fi
base=${base%/}

if [ -z "$prefix" ]; then
  if [ "$(id -u)" = 0 ]; then prefix=/usr/local
  else
    [ -n "${HOME:-}" ] || die "HOME is not set: give --prefix DIR"
    prefix=$HOME/.local
  fi
fi
bindir=${prefix%/}/bin

# ---- what this machine is ----

refuse_32bit() { # $1: what uname -m said
  die "this is a 32-bit system ($1): msgbus has no 32-bit build (Bun, its runtime, runs on 64-bit CPUs only).
  On a Raspberry Pi 3, 4, 5, 400, 500 or Zero 2 W: install Raspberry Pi OS (64-bit) - in Raspberry Pi
  Imager choose \"Raspberry Pi OS (64-bit)\" - and run this again.
  A Pi 1, Pi 2, Zero or Zero W cannot run a 64-bit OS: run msgbus serve on another machine and
  reach it over the network (HTTP needs only curl: curl --data-binary @file http://HOST:6553/TOPIC)."
}

detect_target() {
  os=${MSGBUS_INSTALL_OS:-}
  if [ -z "$os" ]; then
    case $(uname -s) in
      Linux) os=linux ;;
      Darwin) os=darwin ;;
      MINGW* | MSYS* | CYGWIN* | Windows*) die "on Windows use install.ps1 (PowerShell): irm https://github.com/$REPOSITORY/releases/latest/download/install.ps1 | iex" ;;
      *) die "no msgbus build for $(uname -s): there are builds for Linux, macOS and Windows (docs/RELEASING.md)" ;;
    esac
  fi
  arch=${MSGBUS_INSTALL_ARCH:-}
  if [ -z "$arch" ]; then
    machine=$(uname -m)
    case $machine in
      x86_64 | amd64) arch=x64 ;;
      aarch64 | arm64) arch=arm64 ;;
      armv[0-7]* | arm | armhf | armel) refuse_32bit "$machine" ;;
      i[3-6]86 | x86) refuse_32bit "$machine" ;;
      *) die "no msgbus build for the CPU '$machine': there are builds for x64 (x86_64) and arm64 (aarch64)" ;;
    esac
    # A 64-bit kernel under a 32-bit userland (32-bit Raspberry Pi OS on a Pi 4 or 5 says aarch64).
    if [ "$os" = linux ] && [ "$(getconf LONG_BIT 2>/dev/null || echo 64)" = 32 ]; then
      refuse_32bit "$machine kernel, 32-bit userland"
    fi
    # An x64 shell under Rosetta on Apple silicon: the arm64 build is the native one.
    if [ "$os" = darwin ] && [ "$arch" = x64 ] && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || echo 0)" = 1 ]; then
      arch=arm64
    fi
  fi
  case $os-$arch in linux-x64 | linux-arm64 | darwin-x64 | darwin-arm64) ;; *) die "no msgbus build for $os-$arch" ;; esac

  suffix=
  if [ "$os" = linux ]; then
    libc=${MSGBUS_INSTALL_LIBC:-}
    if [ -z "$libc" ]; then
      if (ldd --version 2>&1 || true) | grep -qi musl; then libc=musl
      elif [ -e /lib64/ld-linux-x86-64.so.2 ] || [ -e /lib/ld-linux-aarch64.so.1 ] || [ -e /lib/x86_64-linux-gnu/libc.so.6 ] || [ -e /lib/aarch64-linux-gnu/libc.so.6 ]; then libc=glibc
      elif ls /lib/ld-musl-* >/dev/null 2>&1; then libc=musl
      else libc=glibc; fi
    fi
    case $libc in
      musl) suffix=-musl ;;
      glibc | gnu) ;;
      *) die "MSGBUS_INSTALL_LIBC is glibc or musl, not '$libc'" ;;
    esac
  fi

  # x64: the default build for CPUs with AVX2 (2013 on), the baseline build for older ones.
  if [ "$arch" = x64 ]; then
    if [ "$os" = linux ]; then
      cpuinfo=${MSGBUS_INSTALL_CPUINFO:-/proc/cpuinfo}
      if [ -r "$cpuinfo" ] && ! grep -qw avx2 "$cpuinfo"; then
        if [ -z "$suffix" ]; then suffix=-baseline
        else say "note: no AVX2 on this CPU; there is no musl baseline build, using linux-x64-musl (Bun's x64 runtime needs SSE4.2)"; fi
      fi
    elif ! sysctl -n machdep.cpu.leaf7_features machdep.cpu.features 2>/dev/null | grep -qi avx2; then
      say "note: no AVX2 reported by sysctl; using darwin-x64 (Bun's x64 runtime needs SSE4.2; macOS 13 runs only on CPUs with AVX2)"
    fi
  fi
  target=$os-$arch$suffix
}

# ---- downloads: https, file:// or a plain folder ----

downloader=${MSGBUS_INSTALL_DOWNLOADER:-}
if [ -z "$downloader" ]; then
  if command -v curl >/dev/null 2>&1; then downloader=curl
  elif command -v wget >/dev/null 2>&1; then downloader=wget
  else downloader=none; fi
fi

fetch() { # $1: name of a release asset, $2: file to write
  case $base in
    file://*) cp "${base#file://}/$1" "$2" 2>/dev/null || die "cannot read ${base#file://}/$1" ;;
    http://* | https://*)
      case $downloader in
        curl) curl -fsSL --retry 3 -o "$2" "$base/$1" || die "download failed: $base/$1" ;;
        wget) wget -q -O "$2" "$base/$1" || die "download failed: $base/$1" ;;
        none) die "neither curl nor wget is installed (Debian: apt-get install curl; Alpine: apk add curl)" ;;
        *) die "MSGBUS_INSTALL_DOWNLOADER is curl or wget, not '$downloader'" ;;
      esac ;;
    *://*) die "--base-url takes https://, http://, file:// or a folder, not '$base'" ;;
    *) cp "$base/$1" "$2" 2>/dev/null || die "cannot read $base/$1" ;;
  esac
}

sha256() { # prints the SHA-256 of $1
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  elif command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 "$1" | sed 's/.*= *//'
  else die "no sha256sum, shasum or openssl to check the download with"; fi
}

# ---- install ----

main() {
  forced=$target
  if [ -n "$target" ]; then
    case $target in
      linux-x64 | linux-x64-baseline | linux-x64-musl | linux-arm64 | linux-arm64-musl | darwin-x64 | darwin-arm64) ;;
      windows-*) die "for Windows use install.ps1" ;;
      *) die "unknown --target '$target' (linux-x64, linux-x64-baseline, linux-x64-musl, linux-arm64, linux-arm64-musl, darwin-x64, darwin-arm64)" ;;
    esac
  else
    detect_target
  fi

  tmp=$(mktemp -d 2>/dev/null || mktemp -d -t msgbus-install)
  trap 'rm -rf "$tmp"' EXIT
  trap 'exit 130' INT TERM

  say "installing msgbus ${version:-(latest)} for $target from $base"
  fetch SHA256SUMS "$tmp/SHA256SUMS"

  # .tar.xz is ~25% smaller; taken when xz is here and the release has one.
  archive=msgbus-$target.tar.gz
  if command -v xz >/dev/null 2>&1 && grep -q " \*\{0,1\}msgbus-$target\.tar\.xz\$" "$tmp/SHA256SUMS"; then
    archive=msgbus-$target.tar.xz
  fi
  expected=$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1; exit }' "$tmp/SHA256SUMS")
  [ -n "$expected" ] || die "SHA256SUMS has no line for $archive: is $target in this release?"

  fetch "$archive" "$tmp/$archive"
  actual=$(sha256 "$tmp/$archive")
  if [ "$actual" != "$expected" ]; then
    die "checksum mismatch for $archive: SHA256SUMS says $expected, the download is $actual. Nothing was installed."
  fi
  say "checksum ok: $archive (sha256 $expected)"

  mkdir -p "$tmp/unpack"
  case $archive in
    *.tar.xz) xz -dc "$tmp/$archive" | (cd "$tmp/unpack" && tar -xf -) ;;
    *) gzip -dc "$tmp/$archive" | (cd "$tmp/unpack" && tar -xf -) ;;
  esac
  binary=$tmp/unpack/msgbus-$target/msgbus
  [ -f "$binary" ] || die "$archive does not hold msgbus-$target/msgbus"

  mkdir -p "$bindir" || die "cannot create $bindir (run as root, or give --prefix DIR)"
  # Copy beside the old binary, then rename over it: a running msgbus keeps its old file.
  cp "$binary" "$bindir/.msgbus.new.$$" || die "cannot write to $bindir (run as root, or give --prefix DIR)"
  chmod 755 "$bindir/.msgbus.new.$$"
  mv -f "$bindir/.msgbus.new.$$" "$bindir/msgbus"
  say "installed $bindir/msgbus"

  if [ -n "$forced" ]; then
    say "not run: --target $forced was given"
  elif got=$("$bindir/msgbus" --version 2>&1); then
    say "msgbus --version: $got"
  else
    hint=
    case $target in *-musl) hint=" On Alpine it needs libstdc++ and libgcc: apk add libstdc++ libgcc" ;; esac
    die "installed, but $bindir/msgbus --version failed: $got.$hint"
  fi
  case ":${PATH:-}:" in
    *":$bindir:"*) ;;
    *) say "note: $bindir is not on your PATH; add it, e.g. echo 'export PATH=\"$bindir:\$PATH\"' >> ~/.profile" ;;
  esac
}

main
