#!/usr/bin/env bash
# Release smoke test: builds release targets with build.ts, checks SHA256SUMS, unpacks each archive
# as a user would, and runs the binary where this machine can (natively, under qemu-user, under
# wine): --version, --help, serve on free loopback ports, put/get of a text and a binary payload
# through the binary itself, redis-cli and curl against it, and a graceful stop.
#
#   scripts/smoke.sh                          linux-x64 linux-arm64 windows-x64 (built first)
#   scripts/smoke.sh linux-arm64              one target
#   scripts/smoke.sh all                      all eight (macOS ones are checked statically, then SKIP)
#   scripts/smoke.sh --no-build [target…]     test what dist/ already holds (e.g. after npm run build)
#
# One PASS/FAIL/SKIP line per target at the end; exit 1 if any target FAILs. Installs nothing: a
# missing tool is named with its apt-get line and whatever needs it is skipped. See docs/RELEASING.md.
# The musl targets run natively on a musl host (Alpine), else under qemu-user with an Alpine root
# filesystem that has libstdc++ and libgcc: MSGBUS_SMOKE_ALPINE_X64=DIR, MSGBUS_SMOKE_ALPINE_ARM64=DIR.

set -uo pipefail

if [ "$(uname -s)" != Linux ] || [ "${BASH_VERSINFO[0]}" -lt 5 ]; then
  echo "smoke: runs on Linux with bash 5 (it uses qemu-user and wine to reach the other platforms)" >&2
  exit 2
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIST=$ROOT/dist
ALL_TARGETS=(linux-x64 linux-x64-baseline linux-x64-musl linux-arm64 linux-arm64-musl windows-x64 darwin-x64 darwin-arm64)
DEFAULT_TARGETS=(linux-x64 linux-arm64 windows-x64)

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

build=1
targets=()
for arg in "$@"; do
  case $arg in
    --no-build) build=0 ;;
    -h | --help) usage; exit 0 ;;
    all) targets+=("${ALL_TARGETS[@]}") ;;
    linux-x64 | linux-x64-baseline | linux-x64-musl | linux-arm64 | linux-arm64-musl | windows-x64 | darwin-x64 | darwin-arm64) targets+=("$arg") ;;
    *) echo "smoke: unknown argument '$arg' (targets: ${ALL_TARGETS[*]} all; --no-build)" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=("${DEFAULT_TARGETS[@]}")

BUN=$ROOT/node_modules/.bin/bun
[ -x "$BUN" ] || BUN=$(command -v bun || true)
if [ -z "$BUN" ]; then echo "smoke: bun not found: run npm install first" >&2; exit 2; fi
VERSION=$("$BUN" -e 'console.log(require(process.argv[1]).version)' "$ROOT/package.json")

# A user's msgbus settings must not change what the binaries under test do.
unset MSGBUS_HOST MSGBUS_PORT MSGBUS_HTTP_PORT MSGBUS_URL MSGBUS_TOKEN MSGBUS_DATA MSGBUS_TLS_CERT MSGBUS_TLS_KEY \
  MSGBUS_MAX_MESSAGE_SIZE MSGBUS_MAX_QUEUE MSGBUS_OVERFLOW MSGBUS_LOG_LEVEL MSGBUS_LOG_FORMAT BHOST BPORT BMAXMESSAGESIZE

WORK=$(mktemp -d "${TMPDIR:-/tmp}/msgbus-smoke.XXXXXX")
SERVER_PID=
WINE_USED=0
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null; fi
  # wineserver and winedevice.exe of our own prefix (started by this run) stop with it.
  if [ "$WINE_USED" = 1 ] && [ -n "${WINESERVER:-}" ]; then WINEPREFIX=$WINEPREFIX "$WINESERVER" -k 2>/dev/null; fi
  if [ -n "${MSGBUS_SMOKE_KEEP:-}" ]; then echo "smoke: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
missing() { echo "  note  $1 not found (apt-get install -y $2)"; }

declare -A RESULT
failures=() # of the target under test

ok() { echo "  ok    $*"; }
bad() { echo "  FAIL  $*"; failures+=("$1"); }
check() { # check "what" command…: ok/FAIL by exit status
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

# ---- build and checksums ----

if [ "$build" = 1 ]; then
  buildable=()
  for t in "${targets[@]}"; do [[ " ${buildable[*]} " == *" $t "* ]] || buildable+=("$t"); done
  echo "== build: bun build.ts ${buildable[*]/#/--target }"
  start=$(now)
  if ! (cd "$ROOT" && "$BUN" build.ts "${buildable[@]/#/--target=}"); then
    echo "FAIL build (bun build.ts)"; exit 1
  fi
  echo "   built in $(since "$start") s"
fi

if ! command -v sha256sum >/dev/null; then echo "smoke: sha256sum not found (apt-get install -y coreutils)" >&2; exit 2; fi

# ---- how each target runs here ----

HOST_ARCH=$(uname -m)
HOST_OS=$(uname -s)
QEMU_ARM64=() WINE=() WINESERVER=

runner_for() { # sets RUNNER (array) and HOW, or returns 1 with SKIP_REASON
  local target=$1
  RUNNER=() HOW= SKIP_REASON=
  case "$target:$HOST_OS:$HOST_ARCH" in
    linux-*-musl:Linux:*) musl_runner "$target" || return 1 ;;
    linux-x64:Linux:x86_64 | linux-x64-baseline:Linux:x86_64 | linux-arm64:Linux:aarch64) HOW=native ;;
    linux-x64:Linux:* | linux-x64-baseline:Linux:*) # e.g. on a Raspberry Pi
      local qemu64
      qemu64=$(command -v qemu-x86_64-static || command -v qemu-x86_64 || true)
      if [ -z "$qemu64" ] || [ ! -d /usr/x86_64-linux-gnu/lib ]; then
        SKIP_REASON="no qemu-user for x86_64 (apt-get install -y qemu-user-static libc6-amd64-cross)"; return 1
      fi
      RUNNER=("$qemu64" -L /usr/x86_64-linux-gnu) HOW="qemu (${RUNNER[*]})" ;;
    linux-arm64:Linux:*)
      if [ ${#QEMU_ARM64[@]} -eq 0 ]; then
        local qemu
        qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
        if [ -z "$qemu" ]; then
          SKIP_REASON="qemu-user not found (apt-get install -y qemu-user-static libc6-arm64-cross)"; return 1
        fi
        if [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
          SKIP_REASON="no arm64 glibc for qemu -L (apt-get install -y libc6-arm64-cross)"; return 1
        fi
        QEMU_ARM64=("$qemu" -L /usr/aarch64-linux-gnu)
      fi
      RUNNER=("${QEMU_ARM64[@]}") HOW="qemu (${QEMU_ARM64[*]})" ;;
    windows-x64:Linux:x86_64)
      if [ ${#WINE[@]} -eq 0 ]; then
        local wine
        wine=$(command -v wine || command -v wine64 || { [ -x /usr/lib/wine/wine64 ] && echo /usr/lib/wine/wine64; } || true)
        if [ -z "$wine" ]; then SKIP_REASON="wine not found (apt-get install -y wine wine64)"; return 1; fi
        WINESERVER=$(command -v wineserver || { [ -x /usr/lib/wine/wineserver64 ] && echo /usr/lib/wine/wineserver64; } || true)
        WINE=("$wine")
      fi
      RUNNER=("${WINE[@]}") HOW="wine ($("${WINE[@]}" --version 2>/dev/null))" ;;
    darwin-*) SKIP_REASON="macOS binaries cannot run on Linux (on a Mac: tar xzf msgbus-$target.tar.gz && ./msgbus --version)"; return 1 ;;
    *) SKIP_REASON="no way to run $target on $HOST_OS $HOST_ARCH here"; return 1 ;;
  esac
}

# musl: natively on a musl host; else qemu-user with an Alpine root filesystem (its loader, libc,
# libstdc++ and libgcc: Bun's musl runtime links libstdc++ and libgcc_s dynamically). Debian's musl
# package has the loader but no musl libstdc++, so on Debian without such a root this is a SKIP.
musl_runner() { # $1: target; sets RUNNER and HOW, or returns 1 with SKIP_REASON
  local arch=x86_64 var=MSGBUS_SMOKE_ALPINE_X64 root qemu
  [ "$1" = linux-arm64-musl ] && arch=aarch64 var=MSGBUS_SMOKE_ALPINE_ARM64
  if [ "$HOST_ARCH" = "$arch" ] && (ldd --version 2>&1 || true) | grep -qi musl; then HOW=native; return 0; fi
  root=${!var:-}
  if [ -z "$root" ]; then
    SKIP_REASON="not a musl host and no Alpine root filesystem given ($var=DIR with apk add libstdc++ libgcc; see docs/RELEASING.md)"; return 1
  fi
  if [ ! -e "$root/lib/ld-musl-$arch.so.1" ] || ! ls "$root"/usr/lib/libstdc++.so.6 >/dev/null 2>&1; then
    SKIP_REASON="$var=$root lacks lib/ld-musl-$arch.so.1 or usr/lib/libstdc++.so.6 (apk add libstdc++ libgcc)"; return 1
  fi
  qemu=$(command -v "qemu-$arch-static" || command -v "qemu-$arch" || true)
  if [ -z "$qemu" ]; then SKIP_REASON="qemu-user not found (apt-get install -y qemu-user-static)"; return 1; fi
  RUNNER=("$qemu" -L "$root") HOW="qemu (${RUNNER[*]})"
}

# Wine: a prefix of our own (the user's ~/.wine is left alone), kept between runs because its
# first initialisation takes ~10-15 s. WINEDEBUG=-all silences fixme noise and Debian's "wine32
# is missing" hint (only 64-bit wine is needed); mscoree/mshtml off: no Mono/Gecko install prompt.
prepare_wine() {
  export WINEPREFIX=${MSGBUS_SMOKE_WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/msgbus-smoke/wine}
  export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" WINEARCH=win64
  WINE_USED=1
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    local start; start=$(now)
    mkdir -p "$(dirname "$WINEPREFIX")"
    "${WINE[@]}" wineboot --init >/dev/null 2>&1
    [ -n "$WINESERVER" ] && "$WINESERVER" -w 2>/dev/null
    echo "  note  created wine prefix $WINEPREFIX in $(since "$start") s (once)"
  fi
}

# Bun >= 1.4 imports ProcessPrng from bcryptprimitives.dll; wine < 9 (Debian 12 ships 8.0) has no
# such DLL and the exe fails to load (exit 53, c0000135). Every real Windows 10/11 has it. Then a
# stand-in DLL built with mingw-w64 is put beside msgbus.exe: ProcessPrng over RtlGenRandom.
wine_bcryptprimitives() { # $1: directory of msgbus.exe; returns 1 with SKIP_REASON when impossible
  [ -f "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" ] && return 0
  local cc
  cc=$(command -v x86_64-w64-mingw32-gcc || true)
  if [ -z "$cc" ]; then
    SKIP_REASON="$("${WINE[@]}" --version) has no bcryptprimitives.dll (Bun's ProcessPrng) and no mingw-w64 to build a stand-in (apt-get install -y gcc-mingw-w64-x86-64-win32, or use wine >= 9)"
    return 1
  fi
  cat >"$WORK/bcryptprimitives.c" <<'EOF'
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
  while (length > 0) {
    ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
    if (!SystemFunction036(data, chunk)) return FALSE;
    data += chunk;
    length -= chunk;
  }
  return TRUE;
}
EOF
  if ! "$cc" -O2 -shared -s -o "$1/bcryptprimitives.dll" "$WORK/bcryptprimitives.c" -ladvapi32; then
    SKIP_REASON="could not build the bcryptprimitives.dll stand-in for wine"
    return 1
  fi
  echo "  note  $("${WINE[@]}" --version) lacks bcryptprimitives.dll: using a stand-in built with mingw-w64 (ProcessPrng)"
}

# ---- per-target steps ----

# Static header check: the file is an executable for the target's OS and CPU.
header_ok() { # file target (little-endian fields, as on every target we build)
  local pe
  bytes() { od -An -tx1 -j"$2" -N"$3" "$1" | tr -d ' \n'; }
  # The ELF interpreter (.interp, in the first page): musl's loader for the musl builds, glibc's
  # for the others (the whole file mentions both: Bun knows every loader's name).
  local interp; interp=$(head -c 4096 "$1" | grep -ao '/lib[a-z0-9]*/ld-[a-z0-9_.-]*' | head -1)
  case $2 in
    linux-x64-musl) [ "$interp" = /lib/ld-musl-x86_64.so.1 ] || return 1 ;;
    linux-arm64-musl) [ "$interp" = /lib/ld-musl-aarch64.so.1 ] || return 1 ;;
    linux-x64*) [ "$interp" = /lib64/ld-linux-x86-64.so.2 ] || return 1 ;;
    linux-arm64) [ "$interp" = /lib/ld-linux-aarch64.so.1 ] || return 1 ;;
  esac
  case $2 in
    linux-x64*) [ "$(bytes "$1" 0 4)" = 7f454c46 ] && [ "$(bytes "$1" 18 2)" = 3e00 ] ;;   # ELF, EM_X86_64
    linux-arm64*) [ "$(bytes "$1" 0 4)" = 7f454c46 ] && [ "$(bytes "$1" 18 2)" = b700 ] ;; # ELF, EM_AARCH64
    windows-x64) # MZ, then at e_lfanew "PE\0\0" and machine AMD64
      pe=$(od -An -tu4 -j60 -N4 "$1" | tr -d ' \n')
      [ "$(bytes "$1" 0 2)" = 4d5a ] && [ "$(bytes "$1" "$pe" 6)" = 504500006486 ] ;;
    darwin-x64) [ "$(bytes "$1" 0 8)" = cffaedfe07000001 ] ;;   # Mach-O 64, CPU_TYPE_X86_64
    darwin-arm64) [ "$(bytes "$1" 0 8)" = cffaedfe0c000001 ] ;; # Mach-O 64, CPU_TYPE_ARM64
    *) return 1 ;;
  esac
}

verify_and_unpack() { # target dir → sets BIN (path of the unpacked binary)
  local target=$1 dir=$2 inner=msgbus archives=("msgbus-$1.tar.gz") archive unpacked
  [ -f "$DIST/msgbus-$1.tar.xz" ] && archives+=("msgbus-$1.tar.xz")
  [ "$target" = windows-x64 ] && inner=msgbus.exe archives=("msgbus-$1.zip")
  BIN=
  for archive in "${archives[@]}"; do
    if [ ! -f "$DIST/$archive" ]; then bad "dist/$archive exists (build it: bun build.ts --target $target)"; return 1; fi
    local line
    line=$(grep -E "^[0-9a-f]{64}  $archive\$" "$DIST/SHA256SUMS" 2>/dev/null)
    if [ -z "$line" ]; then bad "dist/SHA256SUMS lists $archive"; return 1; fi
    if (cd "$DIST" && echo "$line" | sha256sum -c --quiet --status -); then ok "SHA256SUMS matches $archive ($(du -m "$DIST/$archive" | cut -f1) MiB)"
    else bad "SHA256SUMS matches $archive"; return 1; fi
    # Each archive holds one folder msgbus-<target>/ with the binary, LICENSE and README.md.
    unpacked=$dir/${archive##*.}
    mkdir -p "$unpacked"
    case $archive in
      *.zip)
        if ! command -v unzip >/dev/null; then missing unzip unzip; return 1; fi
        unzip -q "$DIST/$archive" -d "$unpacked" || { bad "unzip $archive"; return 1; } ;;
      *.tar.xz) tar -xJf "$DIST/$archive" -C "$unpacked" || { bad "tar -xJf $archive"; return 1; } ;;
      *) tar -xzf "$DIST/$archive" -C "$unpacked" || { bad "tar -xzf $archive"; return 1; } ;;
    esac
    local has; has=$(cd "$unpacked" && find . -mindepth 1 | sort | tr '\n' ' ')
    if [ "$has" != "./msgbus-$target ./msgbus-$target/LICENSE ./msgbus-$target/README.md ./msgbus-$target/$inner " ]; then
      bad "$archive holds msgbus-$target/ with $inner, LICENSE and README.md (has: $has)"; return 1
    fi
    if [ -z "$BIN" ]; then BIN=$unpacked/msgbus-$target/$inner
    elif cmp -s "$BIN" "$unpacked/msgbus-$target/$inner"; then ok "$archive unpacks to the same $inner as ${archives[0]}"
    else bad "$archive unpacks to the same $inner as ${archives[0]}"; fi
  done
  check "${archives[0]} unpacks to an executable $inner of $(du -m "$BIN" | cut -f1) MiB" test -x "$BIN"
  check "$inner is a $target executable (file header)" header_ok "$BIN" "$target"
  return 0
}

free_ports() { # prints two free loopback TCP ports
  "$BUN" -e '
    const a = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const b = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    console.log(a.port, b.port); a.stop(true); b.stop(true);'
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# run_msgbus args… : the binary under test, from its own directory, with a deadline.
run_msgbus() { (cd "$BIN_DIR" && timeout -k 5 "$CMD_DEADLINE" "${RUNNER[@]}" "./$BIN_NAME" "$@"); }

start_server() { # sets SERVER_PID, PORT, HTTP_PORT; returns 1 if it never became ready
  local attempt deadline
  for attempt in 1 2 3; do
    read -r PORT HTTP_PORT < <(free_ports)
    local start; start=$(now)
    (cd "$BIN_DIR" && exec "${RUNNER[@]}" "./$BIN_NAME" serve --host 127.0.0.1 --port "$PORT" --http-port "$HTTP_PORT") \
      >"$TDIR/serve.out" 2>"$TDIR/serve.err" &
    SERVER_PID=$!
    deadline=$(($(date +%s) + START_DEADLINE))
    while [ "$(date +%s)" -lt "$deadline" ]; do
      if port_open "$PORT" && port_open "$HTTP_PORT"; then
        SERVE_READY=$(since "$start")
        return 0
      fi
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then # alive but not listening: a real failure, not a port race
      kill -KILL "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=
      echo "  ..    serve was not listening after ${START_DEADLINE} s; its stderr:"; sed 's/^/        /' "$TDIR/serve.err" | tail -5
      return 1
    fi
    wait "$SERVER_PID" 2>/dev/null; SERVER_PID=
    grep -qiE 'in use|EADDRINUSE' "$TDIR/serve.err" || break
  done
  echo "  ..    serve exited before listening; its stderr:"; sed 's/^/        /' "$TDIR/serve.err" | tail -5
  return 1
}

stop_server() { # $1: signal; ok when the server exits 0 within the deadline and logged its stop
  local signal=$1 start; start=$(now)
  kill -"$signal" "$SERVER_PID" 2>/dev/null
  local deadline=$(($(date +%s) + STOP_DEADLINE))
  while kill -0 "$SERVER_PID" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=
    bad "SIG$signal stops serve within ${STOP_DEADLINE} s"
    return
  fi
  wait "$SERVER_PID"; local rc=$?; SERVER_PID=
  if [ "$rc" = 0 ] && grep -q stopped "$TDIR/serve.err"; then ok "SIG$signal stops serve gracefully: exit 0 in $(since "$start") s"
  else bad "SIG$signal stops serve gracefully (exit $rc; last log: $(tail -1 "$TDIR/serve.err"))"; fi
}

# A binary payload with every byte value, CR, LF, NUL, invalid UTF-8, not ending in a newline.
make_payloads() {
  printf 'hello from the smoke test\n' >"$WORK/text.in"
  "$BUN" -e '
    const bytes = new Uint8Array(70000);
    for (let i = 0; i < 256; i++) bytes[i] = i;
    crypto.getRandomValues(bytes.subarray(256, 65792));
    for (let i = 65792; i < bytes.length; i++) bytes[i] = [13, 10, 0, 255, 26][i % 5];
    bytes[bytes.length - 1] = 0xc3;
    await Bun.write(process.argv[1], bytes);' "$WORK/binary.in"
}

same_file() { cmp -s "$1" "$2"; }
failed_checks() { local f out=; for f in "${failures[@]}"; do out+="${out:+, }${f%% (*}"; done; echo "$out"; }
stderr_of() { [ -s "$1" ] && printf ': %s' "$(head -1 "$1" | cut -c1-100)"; }

round_trips() {
  local url=tcp://127.0.0.1:$PORT http=http://127.0.0.1:$HTTP_PORT out=$TDIR/out rc

  # Text and binary from stdin through the binary itself, the README's two forms:
  # `echo hello | msgbus put jobs` and `msgbus put pics < photo.jpg`.
  local put_rc
  cat "$WORK/text.in" | run_msgbus put --url "$url" smoke.text 2>"$out.put.err"; put_rc=$?
  run_msgbus get --url "$url" smoke.text >"$out.text" 2>"$out.text.err"; rc=$?
  if [ "$rc" = 0 ] && same_file "$WORK/text.in" "$out.text"; then ok "cat text | put; get > file: text round-trip"
  else bad "cat text | put; get > file: text round-trip (put exit $put_rc$(stderr_of "$out.put.err"), get exit $rc, got $(wc -c <"$out.text") of $(wc -c <"$WORK/text.in") bytes)"; fi

  run_msgbus put --url "$url" smoke.binary <"$WORK/binary.in" 2>"$out.put.err"; put_rc=$?
  run_msgbus get --url "$url" smoke.binary >"$out.binary" 2>"$out.binary.err"; rc=$?
  if [ "$rc" = 0 ] && same_file "$WORK/binary.in" "$out.binary"; then ok "put < file; get > file: 70000-byte binary round-trip"
  else bad "put < file; get > file: 70000-byte binary round-trip (put exit $put_rc$(stderr_of "$out.put.err"), get exit $rc, got $(wc -c <"$out.binary") of 70000 bytes)"; fi

  # Arguments as the payload, and get's [file] argument (relative, and absolute in the OS's form).
  local abs=$TDIR/out.arg-abs rel=out.arg-rel
  [ "$TARGET" = windows-x64 ] && command -v winepath >/dev/null && abs=$(winepath -w "$abs" 2>/dev/null)
  run_msgbus put --url "$url" smoke.args two words && run_msgbus put --url "$url" smoke.args again
  run_msgbus get --url "$url" smoke.args "$rel"; rc=$?
  if [ "$rc" = 0 ] && [ "$(cat "$BIN_DIR/$rel" 2>/dev/null)" = "two words" ]; then ok "put topic two words; get topic $rel"
  else bad "put topic two words; get topic $rel (exit $rc)"; fi
  run_msgbus get --url "$url" smoke.args "$abs"; rc=$?
  if [ "$rc" = 0 ] && [ "$(cat "$TDIR/out.arg-abs" 2>/dev/null)" = "again" ]; then ok "get topic $abs (absolute path)"
  else bad "get topic $abs (absolute path; exit $rc)"; fi

  # --lines from a pipe: one message per line.
  printf 'one\ntwo\r\nthree' | run_msgbus put --url "$url" smoke.lines --lines 2>"$out.put.err"; rc=$?
  local got
  got=$(for _ in 1 2 3; do run_msgbus get --url "$url" smoke.lines; echo "|"; done 2>&1 | tr -d '\n')
  if [ "$rc" = 0 ] && [ "$got" = "one|two|three|" ]; then ok "printf … | put --lines: three messages"
  else bad "printf … | put --lines: three messages (put exit $rc$(stderr_of "$out.put.err"), got: ${got:0:120})"; fi

  run_msgbus get --url "$url" smoke.empty >/dev/null 2>&1; rc=$?
  check "get on an empty topic exits 3 (got $rc)" test "$rc" = 3

  # redis-cli against the same server, both directions.
  if command -v redis-cli >/dev/null; then
    local rcli=(timeout 10 redis-cli -h 127.0.0.1 -p "$PORT")
    "${rcli[@]}" RPUSH smoke.redis "from redis-cli" >/dev/null
    got=$(run_msgbus get --url "$url" smoke.redis)
    check "redis-cli RPUSH, msgbus get" test "$got" = "from redis-cli"
    run_msgbus put --url "$url" smoke.redis "from msgbus"
    got=$("${rcli[@]}" --raw LPOP smoke.redis)
    check "msgbus put, redis-cli LPOP" test "$got" = "from msgbus"
  else
    missing redis-cli redis-tools
  fi

  # curl to the HTTP port: write and take, and the same bus as TCP.
  if command -v curl >/dev/null; then
    local c=(curl -sS --max-time 10)
    got=$("${c[@]}" -o /dev/null -w '%{http_code}' --data-binary 'over http' "$http/smoke.http")
    local taken; taken=$("${c[@]}" "$http/smoke.http")
    local empty; empty=$("${c[@]}" -o /dev/null -w '%{http_code}' "$http/smoke.http")
    check "curl POST /smoke.http ($got), GET takes it, then 204 ($empty)" test "$got:$taken:$empty" = "200:over http:204"
    "${c[@]}" -o /dev/null --data-binary @"$WORK/binary.in" "$http/smoke.cross"
    run_msgbus get --url "$url" smoke.cross >"$out.cross"
    check "curl --data-binary @file, msgbus get over TCP: same bytes" same_file "$WORK/binary.in" "$out.cross"
  else
    missing curl curl
  fi
}

smoke_target() {
  TARGET=$1
  failures=()
  local started; started=$(now)
  TDIR=$WORK/$TARGET
  mkdir -p "$TDIR"
  echo
  echo "== $TARGET"
  verify_and_unpack "$TARGET" "$TDIR" || { RESULT[$TARGET]="FAIL $TARGET: $(failed_checks)"; return; }
  BIN_DIR=$(dirname "$BIN") BIN_NAME=$(basename "$BIN")

  if ! runner_for "$TARGET"; then
    echo "  skip  $SKIP_REASON"
    if [ ${#failures[@]} -gt 0 ]; then RESULT[$TARGET]="FAIL $TARGET: $(failed_checks)"
    else RESULT[$TARGET]="SKIP $TARGET: archive and checksum ok; not run: $SKIP_REASON"; fi
    return
  fi
  echo "  runs  $HOW"
  CMD_DEADLINE=30 START_DEADLINE=15 STOP_DEADLINE=15 STOP_SIGNAL=TERM
  case $HOW in
    qemu*) CMD_DEADLINE=120 START_DEADLINE=90 STOP_DEADLINE=30 ;; # emulated: every start costs ~1-2 s
    wine*)
      CMD_DEADLINE=60 START_DEADLINE=60 STOP_DEADLINE=30
      # wine turns SIGINT into CTRL_C_EVENT (Bun's SIGINT: graceful stop); SIGTERM kills the
      # process at once (exit 143), as TerminateProcess would on Windows.
      STOP_SIGNAL=INT
      prepare_wine
      if ! wine_bcryptprimitives "$BIN_DIR"; then
        echo "  skip  $SKIP_REASON"
        RESULT[$TARGET]="SKIP $TARGET: $SKIP_REASON"
        return
      fi ;;
  esac

  local start got
  start=$(now)
  got=$(run_msgbus --version 2>"$TDIR/version.err")
  # "0.1.0 (commit 4d03afe1c2b3, built 2025-11-30T13:20:00Z, linux-x64)"
  if [[ "$got" == "$VERSION (commit "*", built "*", $TARGET)" ]]; then ok "--version prints $got ($(since "$start") s)"
  else bad "--version prints $VERSION (commit …, built …, $TARGET) (got '${got:0:100}'; stderr: $(head -c 300 "$TDIR/version.err"))"; RESULT[$TARGET]="FAIL $TARGET: $(failed_checks)"; return; fi
  got=$(run_msgbus --help 2>&1)
  check "--help lists the commands" grep -q "serve|put|get" <<<"$got"

  local ready=""
  if start_server; then
    ready="serve ready in $SERVE_READY s"
    ok "serve listens on 127.0.0.1:$PORT (RESP) and :$HTTP_PORT (HTTP) after $SERVE_READY s"
    round_trips
    if [[ "$TARGET" == linux-x64 || "$TARGET" == linux-x64-baseline ]] && [ "$HOW" = native ]; then cpu_floor_check; fi
    stop_server "$STOP_SIGNAL"
    if port_open "$PORT"; then bad "the port is closed after the stop"; fi
  else
    bad "serve starts on free loopback ports"
  fi

  local how=${HOW%% *}
  if [ ${#failures[@]} -eq 0 ]; then RESULT[$TARGET]="PASS $TARGET ($how, $(since "$started") s; $ready)"
  else RESULT[$TARGET]="FAIL $TARGET ($how): $(failed_checks)"; fi
}

# Bun 1.4's x64 runtime targets Nehalem (SSE4.2) and picks AVX2 code paths at run time, so no
# -baseline build is needed: keep it so. The linux-x64 binary must start and work as a client on an
# emulated CPU without AVX/AVX2 (it dies with SIGILL on one without SSE4.2, e.g. -cpu Penryn).
# Needs the server of this target running.
cpu_floor_check() {
  local qemu; qemu=$(command -v qemu-x86_64-static || command -v qemu-x86_64 || true)
  [ -z "$qemu" ] && { missing qemu-x86_64-static qemu-user-static; return; }
  local nehalem=(timeout 60 "$qemu" -cpu Nehalem "./$BIN_NAME") got
  got=$(cd "$BIN_DIR" && "${nehalem[@]}" --version 2>/dev/null | cut -d' ' -f1 &&
    "${nehalem[@]}" put --url "tcp://127.0.0.1:$PORT" smoke.cpu "no avx2" 2>/dev/null &&
    "${nehalem[@]}" get --url "tcp://127.0.0.1:$PORT" smoke.cpu 2>/dev/null)
  check "on an emulated CPU without AVX/AVX2 (qemu -cpu Nehalem): --version, put, get" test "$got" = "$VERSION"$'\n'"no avx2"
}

# ---- run ----

if printf '%s\n' "${targets[@]}" | grep -qvE '^darwin-'; then make_payloads; fi
seen=" "
for t in "${targets[@]}"; do
  [[ "$seen" == *" $t "* ]] && continue
  seen+="$t "
  smoke_target "$t"
done

echo
status=0
for t in "${targets[@]}"; do
  [ -n "${RESULT[$t]:-}" ] || continue
  echo "${RESULT[$t]}"
  [[ "${RESULT[$t]}" == FAIL* ]] && status=1
  RESULT[$t]=
done
exit $status
