#!/usr/bin/env bash
# Runs the Autobahn|Testsuite (wstest 25.10.1, fuzzingclient mode, cases 1.*
# to 13.*) against the echo example's native WebSocket (/ws), its SockJS raw
# WebSocket (/sockjs/websocket) and the bare tokio-tungstenite baseline
# (bare-ws-echo, /), then summarises the report. Exits non-zero if /ws or
# /sockjs/websocket has a FAILED, NON-STRICT or UNIMPLEMENTED case (both
# negotiate permessage-deflate, sections 12 and 13); bare-ws-echo is
# reported only. See tests/autobahn/README.md.
#
# Env:
#   ECHO_BIN        echo example binary (default: $CARGO_TARGET_DIR or
#                   target, then release/echo, if it exists)
#   BARE_BIN        bare-ws-echo binary (default: same place, bare-ws-echo)
#   AUTOBAHN_DIR    work and report directory (default: target/autobahn)
#   AUTOBAHN_PYTHON2  a Python 2.7 interpreter (default: pyenv's 2.7.18)
#   AUTOBAHN_CASES  comma-separated case patterns (default: "*", all cases)
#   AUTOBAHN_EXCLUDE  comma-separated case patterns to leave out (default:
#                   the slowest permessage-deflate cases, see AUTOBAHN_FULL)
#   AUTOBAHN_FULL   1 runs every case: by default the 96 compression cases
#                   with the largest messages (12.*.9, 12.*.10, 12.*.13 to
#                   12.*.18 and the same in 13.*) are left out. They take
#                   about 80% of sections 12 and 13's time (over 25 minutes
#                   on 2 cores for both endpoints) and test nothing the
#                   other 120 do not, but with larger messages.
#   AUTOBAHN_TIMEOUT  seconds before wstest is stopped (default: 900)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/tests/autobahn"
suite_version="25.10.1"
virtualenv_version="20.21.1"

die() {
  echo "autobahn: $*" >&2
  exit 2
}

absolute() {
  case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac
}

# --- binaries -----------------------------------------------------------------
target_dir="$(absolute "${CARGO_TARGET_DIR:-$root/target}")"
echo_bin="${ECHO_BIN:-$target_dir/release/echo}"
bare_bin="${BARE_BIN:-$target_dir/release/bare-ws-echo}"
for bin in "$echo_bin" "$bare_bin"; do
  [ -x "$bin" ] || die "no executable at $bin; build with \`cargo build --release -p echo -p loadgen\` or set ECHO_BIN and BARE_BIN"
done
echo_bin="$(absolute "$echo_bin")"
bare_bin="$(absolute "$bare_bin")"

work="$(absolute "${AUTOBAHN_DIR:-$root/target/autobahn}")"
report="$work/report"
run_dir="$work/run"
mkdir -p "$work"

# --- Python 2.7 and the wstest virtualenv --------------------------------------
find_python2() {
  if [ -n "${AUTOBAHN_PYTHON2:-}" ]; then
    printf '%s\n' "$AUTOBAHN_PYTHON2"
    return
  fi
  local prefix=""
  if command -v pyenv >/dev/null 2>&1; then
    prefix="$(pyenv prefix 2.7.18 2>/dev/null || true)"
  fi
  if [ -z "$prefix" ]; then
    prefix="${PYENV_ROOT:-$HOME/.pyenv}/versions/2.7.18"
  fi
  printf '%s\n' "$prefix/bin/python"
}
python2="$(find_python2)"
if ! [ -x "$python2" ] || ! "$python2" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; then
  die "Python 2.7 not found at $python2: wstest $suite_version is Python 2 code and needs pyenv's 2.7.18 (\`pyenv install 2.7.18\`) or AUTOBAHN_PYTHON2=/path/to/python2.7"
fi
command -v python3 >/dev/null 2>&1 || die "python3 not found (needed for virtualenv $virtualenv_version and the summary)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 7))' || die "python3 is older than 3.7"

venv="$work/venv"
stamp="$venv/.autobahn-stamp"
want_stamp="$(
  {
    "$python2" -c 'import sys; print(sys.executable); print(sys.version)'
    echo "autobahntestsuite==$suite_version virtualenv==$virtualenv_version"
    cat "$here/requirements.txt"
  } | python3 -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
)"
if [ -x "$venv/bin/wstest" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want_stamp" ]; then
  echo "autobahn: using cached virtualenv $venv"
else
  echo "autobahn: creating the Python 2.7 virtualenv $venv (once; cached after)"
  rm -rf "$venv" "$work/bootstrap"
  # virtualenv 20.21.1 is the last release that creates 2.7 environments; it
  # runs under Python 3, from a throwaway venv of its own.
  python3 -m venv "$work/bootstrap"
  "$work/bootstrap/bin/python" -m pip install --quiet --disable-pip-version-check "virtualenv==$virtualenv_version"
  "$work/bootstrap/bin/python" -m virtualenv --quiet --no-periodic-update \
    --app-data "$work/virtualenv-app-data" -p "$python2" "$venv"
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_PYTHON_VERSION_WARNING=1
  "$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
  "$venv/bin/python" -m pip install --quiet --no-deps "autobahntestsuite==$suite_version"
  "$venv/bin/wstest" --autobahnversion >/dev/null 2>&1 || die "wstest does not start in $venv"
  printf '%s\n' "$want_stamp" >"$stamp"
  rm -rf "$work/bootstrap"
fi

# --- servers -------------------------------------------------------------------
rm -rf "$run_dir"
mkdir -p "$run_dir"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_server NAME BINARY: runs BINARY with PORT=0, its stdout through a FIFO
# read until the `listening on http://ADDRESS` line (then copied on to
# NAME.log by a cat, so the server never blocks on a full pipe), and sets
# $address.
start_server() {
  local name="$1" bin="$2" fifo="$run_dir/$1.fifo" log="$run_dir/$1.log" line fd
  mkfifo "$fifo"
  # Section 9 sends messages of up to 16 MiB; the echo's default limit is 1 MiB.
  PORT=0 ECHO_MAX_MESSAGE_SIZE=33554432 RUST_LOG="${RUST_LOG:-warn}" "$bin" >"$fifo" 2>"$run_dir/$name.stderr" &
  pids+=("$!")
  exec {fd}<"$fifo"
  address=""
  while IFS= read -r -t 60 line <&"$fd"; do
    printf '%s\n' "$line" >>"$log"
    case "$line" in
      "listening on http://"*)
        address="${line#listening on http://}"
        break
        ;;
    esac
  done
  if [ -z "$address" ]; then
    exec {fd}<&-
    cat "$log" "$run_dir/$name.stderr" >&2 2>/dev/null || true
    die "$name ($bin) did not print \`listening on http://ADDRESS\`"
  fi
  cat <&"$fd" >>"$log" &
  pids+=("$!")
  exec {fd}<&-
  echo "autobahn: $name listening on $address"
}

start_server echo "$echo_bin"
echo_address="$address"
start_server bare-ws-echo "$bare_bin"
bare_address="$address"

# --- the suite -----------------------------------------------------------------
# Two wstest processes at once, one per core: the first tests /ws and the bare
# baseline, the second SockJS's raw /websocket. wstest is single-threaded
# Python, and the compression cases keep it busy.
report_sockjs="$work/report-sockjs-raw"
rm -rf "$report" "$report_sockjs"
heavy=""
for section in 12 13; do
  for case in 9 10 13 14 15 16 17 18; do
    heavy="$heavy${heavy:+,}$section.*.$case"
  done
done
if [ "${AUTOBAHN_FULL:-0}" = 1 ]; then
  exclude="${AUTOBAHN_EXCLUDE:-}"
else
  exclude="${AUTOBAHN_EXCLUDE:-$heavy}"
fi

# write_spec FILE OUTDIR AGENT=URL...: a fuzzingclient spec for these servers.
write_spec() {
  local file="$1" outdir="$2"
  shift 2
  AB_REPORT="$outdir" AB_CASES="${AUTOBAHN_CASES:-*}" AB_EXCLUDE="$exclude" \
    python3 - "$file" "$@" <<'PY'
import json, os, sys

def patterns(value):
    return [p.strip() for p in value.split(",") if p.strip()]

spec = {
    "outdir": os.environ["AB_REPORT"],
    "servers": [
        {"agent": server.split("=", 1)[0], "url": server.split("=", 1)[1]}
        for server in sys.argv[2:]
    ],
    "cases": patterns(os.environ["AB_CASES"]),
    "exclude-cases": patterns(os.environ["AB_EXCLUDE"]),
    "exclude-agent-cases": {},
}
with open(sys.argv[1], "w") as f:
    json.dump(spec, f, indent=2)
PY
}

spec="$work/fuzzingclient.json"
spec_sockjs="$work/fuzzingclient-sockjs-raw.json"
write_spec "$spec" "$report" \
  "axum-channel-ws=ws://$echo_address/ws" \
  "bare-tokio-tungstenite=ws://$bare_address/"
write_spec "$spec_sockjs" "$report_sockjs" \
  "axum-channel-sockjs-raw=ws://$echo_address/sockjs/websocket"

log="$work/wstest.log"
log_sockjs="$work/wstest-sockjs-raw.log"
echo "autobahn: wstest $suite_version -m fuzzingclient -s $spec and -s $spec_sockjs, at once (logs: $log, $log_sockjs)"
started="$(date +%s.%N)"
# In the background and waited for, so that a signal to this script runs the
# traps (and kills wstest and the servers) at once.
(cd "$work" && exec timeout "${AUTOBAHN_TIMEOUT:-900}" "$venv/bin/wstest" -m fuzzingclient -s "$spec") >"$log" 2>&1 &
first="$!"
pids+=("$first")
(cd "$work" && exec timeout "${AUTOBAHN_TIMEOUT:-900}" "$venv/bin/wstest" -m fuzzingclient -s "$spec_sockjs") >"$log_sockjs" 2>&1 &
second="$!"
pids+=("$second")
status=0
wait "$first" || status=$?
status_sockjs=0
wait "$second" || status_sockjs=$?
elapsed="$(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$started" "$(date +%s.%N)")"
if [ "$status" -ne 0 ] || [ ! -f "$report/index.json" ]; then
  tail -n 40 "$log" >&2
  die "wstest exited with status $status after ${elapsed}s (124 means AUTOBAHN_TIMEOUT)"
fi
if [ "$status_sockjs" -ne 0 ] || [ ! -f "$report_sockjs/index.json" ]; then
  tail -n 40 "$log_sockjs" >&2
  die "wstest (SockJS raw) exited with status $status_sockjs after ${elapsed}s (124 means AUTOBAHN_TIMEOUT)"
fi
cases="$(sed -n 's/^Ok, will run \([0-9]*\) test cases.*/\1/p' "$log" | head -n 1)"
cases_sockjs="$(sed -n 's/^Ok, will run \([0-9]*\) test cases.*/\1/p' "$log_sockjs" | head -n 1)"
echo "autobahn: ${cases:-?} cases x 3 servers in ${elapsed}s; reports: $report/index.html, $report_sockjs/index.html"

result=0
python3 "$here/summarize.py" "$report" \
  --require-clean axum-channel-ws \
  ${cases:+--expect-cases "$cases"} || result=$?
python3 "$here/summarize.py" "$report_sockjs" \
  --require-clean axum-channel-sockjs-raw \
  ${cases_sockjs:+--expect-cases "$cases_sockjs"} || result=$?
exit "$result"
