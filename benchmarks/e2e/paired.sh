#!/usr/bin/env bash
# Paired end-to-end measurement of what the buffer monitor costs a server, in server CPU per request: a Kestrel
# app (/plain, /echo) or samples/TcpProxy in front of a real redis-server (redis).
#
#   benchmarks/e2e/paired.sh [--rounds N] [--seconds S] [--warmup S] [--modes LIST] [--baseline MODE] [--baseline-ref REF] [--baseline-pool POOL] [--env-b VAR=VALUE]... [--endpoints LIST] [--out DIR] [--note TEXT]
#
#   --rounds N       rounds per comparison (default 8)
#   --seconds S      length of each measurement (default 10)
#   --warmup S       load before each measurement, discarded (default 30: see below)
#   --modes LIST     monitor modes compared with the monitor off, comma-separated (default off,budgeted,every,none;
#                    "off" compares the monitor off with itself: the noise floor of this method)
#   --baseline MODE  the mode of server A, which every mode is compared with (default off; e.g. none, to see what
#                    stacks cost on top of the record path)
#   --baseline-ref REF  build server A from this git commit instead of the working tree (in a temporary worktree),
#                    so two versions of the code are compared side by side; with --modes none --baseline none, what a
#                    change did to the record path (default: both servers from the working tree)
#   --baseline-pool POOL  the pool of server A: direct (default: DirectBufferPool, like server B) or own (Kestrel's
#                    own pool for plain and echo, MemoryPool<byte>.Shared for redis); with --modes off --baseline off,
#                    what our pool with the monitor off costs against the pool it replaces
#   --env-b VAR=VALUE  one more variable in server B's environment (repeatable): an OFFHEAPTRACKER_* setting the mode
#                    does not cover, e.g. OFFHEAPTRACKER_MONITOR_STACK_BUDGET=0.5% to compare two budgets
#   --endpoints LIST plain, echo, redis, comma-separated (default plain,echo). redis: redis-benchmark SET and GET
#                    (25 clients each, 512-byte values, no pipelining) through samples/TcpProxy to a redis-server of
#                    each server's own, which the script starts on 127.0.0.1 (installed from apt when missing)
#   --out DIR        where report.md goes (default benchmarks/results/e2e-paired-<yyyy-mm-dd>)
#   --note TEXT      a line put at the top of the report
#
# Why paired: run.sh measures one server at a time, so the noise of this shared machine (other tenants, ±10-30 %
# between rounds) falls on each configuration at a different moment, and a 3 % target drowns in it. Here two copies
# of benchmarks/OffHeapTracker.E2E.Kestrel on AddDirectBufferPool() run at once, one with the monitor off (A) and one
# in the mode under test (B), each loaded by its own wrk (1 thread, 16 connections) over the same seconds. Whatever
# slows the machine slows both. Each server's CPU time (user + system, all threads, /proc/PID/stat) over the window,
# divided by the requests its wrk completed, gives its CPU per request; B/A is the mode's cost, which a CPU-bound
# server pays as throughput. Both servers are started fresh every round and stopped with SIGTERM afterwards.
#
# Why 30 s of warm-up: with 4 s, a profile of the measured window still showed the JIT (libclrjit) at 7 % of a
# core in both servers, and the monitor-on server paying for it twice: its own code tiering up, and a fresh stack
# key, captured once with StackTrace, for every call chain whose return addresses tiering moved. That is the
# cost of the first seconds after start-up, not of the monitor switched on in a process that has been running.
#
# For redis, each proxy forwards to its own redis-server (no persistence), and two redis-benchmark clients per proxy
# (one running SET, one GET, without end) load it from the warm-up's start to the window's end; the requests it
# served are those its redis-server counted in the window (INFO total_commands_processed). redis-benchmark has no
# duration option, and a shared redis-server could not say whose requests it served.
#
# It builds the servers (Release) once, installs wrk, redis-server and redis-tools from apt when missing, binds to
# 127.0.0.1 only, and leaves nothing running, whatever happens.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

ROUNDS=8
MEASURE_SECONDS=10
WARMUP_SECONDS=30
MODES=off,budgeted,every,none
BASELINE=off
BASELINE_REF=""
BASELINE_POOL=direct
ENV_B=()
ENDPOINTS=plain,echo
OUT=""
NOTE=""

usage() {
  sed -n '/^#   benchmarks\/e2e\/paired.sh/,/^#   --note/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

positive() { # name value
  [[ $2 =~ ^[1-9][0-9]{0,3}$ ]] || { echo "paired.sh: $1 must be a whole number from 1 to 9999, not '$2'" >&2; exit 2; }
}

while [ $# -gt 0 ]; do
  case $1 in
    --rounds) [ $# -ge 2 ] || usage; positive "$1" "$2"; ROUNDS=$2; shift 2 ;;
    --seconds) [ $# -ge 2 ] || usage; positive "$1" "$2"; MEASURE_SECONDS=$2; shift 2 ;;
    --warmup) [ $# -ge 2 ] || usage; positive "$1" "$2"; WARMUP_SECONDS=$2; shift 2 ;;
    --modes) [ $# -ge 2 ] || usage; MODES=$2; shift 2 ;;
    --baseline) [ $# -ge 2 ] || usage; BASELINE=$2; shift 2 ;;
    --baseline-ref) [ $# -ge 2 ] || usage; BASELINE_REF=$2; shift 2 ;;
    --baseline-pool) [ $# -ge 2 ] || usage; BASELINE_POOL=$2; shift 2 ;;
    --env-b)
      [ $# -ge 2 ] || usage
      [[ $2 =~ ^OFFHEAPTRACKER_[A-Z_]+=[^[:space:]]+$ ]] || { echo "paired.sh: --env-b takes OFFHEAPTRACKER_NAME=value, not '$2'" >&2; exit 2; }
      ENV_B+=("$2")
      shift 2
      ;;
    --endpoints) [ $# -ge 2 ] || usage; ENDPOINTS=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; OUT=$2; shift 2 ;;
    --note) [ $# -ge 2 ] || usage; NOTE=$2; shift 2 ;;
    -h | --help) usage ;;
    *) echo "paired.sh: unknown option '$1'" >&2; usage ;;
  esac
done

IFS=, read -r -a MODE_LIST <<< "$MODES"
IFS=, read -r -a ENDPOINT_LIST <<< "$ENDPOINTS"
for mode in "${MODE_LIST[@]}"; do
  case $mode in off | budgeted | every | none) ;; *) echo "paired.sh: --modes takes off, budgeted, every and none, not '$mode'" >&2; exit 2 ;; esac
done
case $BASELINE in off | budgeted | every | none) ;; *) echo "paired.sh: --baseline takes off, budgeted, every or none, not '$BASELINE'" >&2; exit 2 ;; esac
case $BASELINE_POOL in direct | own) ;; *) echo "paired.sh: --baseline-pool takes direct or own, not '$BASELINE_POOL'" >&2; exit 2 ;; esac
WANTS_HTTP=""
WANTS_REDIS=""
for endpoint in "${ENDPOINT_LIST[@]}"; do
  case $endpoint in
    plain | echo) WANTS_HTTP=1 ;;
    redis) WANTS_REDIS=1 ;;
    *) echo "paired.sh: --endpoints takes plain, echo and redis, not '$endpoint'" >&2; exit 2 ;;
  esac
done

if [ -n "$BASELINE_REF" ]; then
  BASELINE_COMMIT=$(git rev-parse --verify --quiet "$BASELINE_REF^{commit}") \
    || { echo "paired.sh: --baseline-ref '$BASELINE_REF' names no commit of this repository" >&2; exit 2; }
fi

TODAY=$(date +%F)
OUT=${OUT:-benchmarks/results/e2e-paired-$TODAY}
APP=benchmarks/OffHeapTracker.E2E.Kestrel
BIN=$APP/bin/Release/net10.0/OffHeapTracker.E2E.Kestrel
BIN_A=$BIN
PROXY_APP=samples/TcpProxy
PROXY_BIN=$PROXY_APP/bin/Release/net10.0/TcpProxy
PROXY_BIN_A=$PROXY_BIN
ECHO_BYTES=16384
REDIS_CLIENTS=25 # per redis-benchmark; two per proxy (SET and GET)
REDIS_VALUE_BYTES=512
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/offheaptracker-paired.XXXXXX")
RESULTS=$WORK/results.tsv # endpoint, mode, round, A requests, A ticks, B requests, B ticks
: > "$RESULTS"
PIDS=()       # servers under test
LOAD_PIDS=()  # redis-benchmark clients
REDIS_PIDS=() # the redis-servers behind the proxies
ADDED_POLICY_RC=0

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${LOAD_PIDS[@]}" "${PIDS[@]}" "${REDIS_PIDS[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
  for pid in "${LOAD_PIDS[@]}" "${PIDS[@]}" "${REDIS_PIDS[@]}"; do wait "$pid" 2> /dev/null || true; done
  [ "$ADDED_POLICY_RC" = 0 ] || rm -f /usr/sbin/policy-rc.d
  [ ! -d "$WORK/baseline-tree" ] || git worktree remove --force "$WORK/baseline-tree" > /dev/null 2>&1 || true
  if [ "$rc" -eq 0 ]; then rm -rf "$WORK"; else echo "paired.sh: stopped (exit $rc); logs are in $WORK" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "paired.sh: $*" >&2
  exit 1
}

say() { printf '%s  %s\n' "$(date +%T)" "$*"; }

MISSING=()
[ -z "$WANTS_HTTP" ] || command -v wrk > /dev/null || MISSING+=(wrk)
[ -z "$WANTS_REDIS" ] || command -v redis-server > /dev/null || MISSING+=(redis-server)
[ -z "$WANTS_REDIS" ] || { command -v redis-benchmark > /dev/null && command -v redis-cli > /dev/null; } || MISSING+=(redis-tools)
if [ ${#MISSING[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  say "installing ${MISSING[*]} from apt"
  # Debian's redis-server package starts a system-wide redis when installed; a policy-rc.d answering 101 stops that.
  if [ ! -e /usr/sbin/policy-rc.d ] && [ -z "$SUDO" ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    ADDED_POLICY_RC=1
  fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${MISSING[@]}" > "$WORK/apt.log" 2>&1 \
    || { tail -n 20 "$WORK/apt.log" >&2; fail "apt-get install ${MISSING[*]} failed"; }
  [ "$ADDED_POLICY_RC" = 0 ] || { rm -f /usr/sbin/policy-rc.d; ADDED_POLICY_RC=0; }
fi

build() { # project log what
  dotnet build -c Release "$1" > "$2" 2>&1 || { tail -n 30 "$2" >&2; fail "the build of $3 failed"; }
}

say "building the servers (Release)"
# Whether server B is built from uncommitted code: looked at now, as it is built (the tree may change during the run).
DIRTY=""
git diff --quiet HEAD -- src "$APP" "$PROXY_APP" 2> /dev/null || DIRTY=" (with uncommitted changes to the code under test)"
[ -z "$WANTS_HTTP" ] || build "$APP/OffHeapTracker.E2E.Kestrel.csproj" "$WORK/build.log" "$APP"
[ -z "$WANTS_REDIS" ] || build "$PROXY_APP/TcpProxy.csproj" "$WORK/build-proxy.log" "$PROXY_APP"

if [ -n "$BASELINE_REF" ]; then
  say "building server A from $BASELINE_REF (${BASELINE_COMMIT:0:7}) in a temporary worktree"
  git worktree add --detach "$WORK/baseline-tree" "$BASELINE_COMMIT" > "$WORK/worktree.log" 2>&1 \
    || { cat "$WORK/worktree.log" >&2; fail "git worktree add failed"; }
  [ -z "$WANTS_HTTP" ] || build "$WORK/baseline-tree/$APP/OffHeapTracker.E2E.Kestrel.csproj" "$WORK/build-a.log" "$APP at $BASELINE_REF"
  [ -z "$WANTS_REDIS" ] || build "$WORK/baseline-tree/$PROXY_APP/TcpProxy.csproj" "$WORK/build-proxy-a.log" "$PROXY_APP at $BASELINE_REF"
  BIN_A=$WORK/baseline-tree/$BIN
  PROXY_BIN_A=$WORK/baseline-tree/$PROXY_BIN
fi

# free_port
. "$ROOT/benchmarks/e2e/common.sh"

start_redis() { # -> REDIS_PORT
  local i dir
  REDIS_PORT=$(free_port)
  dir=$WORK/redis-$REDIS_PORT
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$dir" --daemonize no > "$dir/log" 2>&1 &
  REDIS_PIDS+=($!)
  for ((i = 0; i < 100; i++)); do
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2> /dev/null || true)" != PONG ] || return 0
    sleep 0.1
  done
  cat "$dir/log" >&2
  fail "redis-server did not answer PING within 10 s"
}

if [ -n "$WANTS_REDIS" ]; then
  start_redis
  REDIS_PORT_A=$REDIS_PORT
  start_redis
  REDIS_PORT_B=$REDIS_PORT
  say "redis-servers on 127.0.0.1:$REDIS_PORT_A (behind server A) and :$REDIS_PORT_B (behind server B)"
fi

printf 'wrk.method = "POST"\nwrk.body = string.rep("a", %d)\nwrk.headers["Content-Type"] = "application/octet-stream"\n' "$ECHO_BYTES" > "$WORK/echo.lua"

# CPU time the process has used so far, all threads, user + system, in clock ticks (/proc/PID/stat fields 14 and 15,
# counted after the command name's closing parenthesis, which may hold spaces).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# Starts a server in a monitor mode; sets STARTED_PID and STARTED_ADDR (no subshell, so the cleanup knows the pid).
# endpoint redis starts TcpProxy in front of the redis-server on upstream-port, any other the Kestrel app; pool is
# direct or own.
start_server() { # mode log endpoint side(a|b) pool
  local envargs=() var i ready cmd
  for var in $(compgen -e); do
    if [[ $var == OFFHEAPTRACKER_* ]]; then envargs+=(-u "$var"); fi
  done
  if [ "$1" != off ]; then envargs+=(OFFHEAPTRACKER_MONITOR=1 "OFFHEAPTRACKER_MONITOR_STACKS=$1"); fi
  [ "$4" = a ] || envargs+=("${ENV_B[@]}")
  if [ "$3" = redis ]; then
    local bin=$PROXY_BIN port=$REDIS_PORT_B pool=direct
    [ "$4" = b ] || { bin=$PROXY_BIN_A; port=$REDIS_PORT_A; }
    [ "$5" = direct ] || pool=shared
    cmd=("$bin" --listen 127.0.0.1:0 --upstream "127.0.0.1:$port" --pool "$pool")
    ready='^proxying '
  else
    local bin=$BIN pool=direct
    [ "$4" = b ] || bin=$BIN_A
    [ "$5" = direct ] || pool=kestrel
    cmd=("$bin" --listen 127.0.0.1:0 --pool "$pool")
    ready='listening on'
  fi
  : > "$2"
  env "${envargs[@]}" "${cmd[@]}" > "$2" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for ((i = 0; i < 300; i++)); do
    grep -q "$ready" "$2" && break
    kill -0 "$pid" 2> /dev/null || { cat "$2" >&2; fail "the $1 server exited before it was ready"; }
    sleep 0.1
  done
  grep -q "$ready" "$2" || { cat "$2" >&2; fail "the $1 server printed no ready line within 30 s"; }
  local expected="monitor on"
  [ "$1" = off ] && expected="monitor off"
  grep -q "$expected" "$2" || { cat "$2" >&2; fail "the $1 server did not report '$expected'"; }
  STARTED_ADDR=$(sed -nE -e 's|.*listening on http://([0-9.]+:[0-9]+);.*|\1|p' -e 's|^proxying ([0-9.]+:[0-9]+) ->.*|\1|p' "$2" | head -n 1)
  [ -n "$STARTED_ADDR" ] || { cat "$2" >&2; fail "no address in the $1 server's ready line"; }
  STARTED_PID=$pid
}

# Runs wrk against both servers at once for S seconds; the outputs go to $WORK/a.out and $WORK/b.out.
load_both() { # seconds endpoint addr-a addr-b
  local lua=() pa pb rc=0
  [ "$2" = echo ] && lua=(-s "$WORK/echo.lua")
  wrk -t 1 -c 16 -d "$1s" "${lua[@]}" "http://$3/$2" > "$WORK/a.out" 2>&1 &
  pa=$!
  wrk -t 1 -c 16 -d "$1s" "${lua[@]}" "http://$4/$2" > "$WORK/b.out" 2>&1 &
  pb=$!
  wait "$pa" || rc=$?
  wait "$pb" || rc=$?
  [ "$rc" -eq 0 ] || { cat "$WORK/a.out" "$WORK/b.out" >&2; fail "wrk exited with $rc"; }
  if grep -qE 'Non-2xx|Socket errors' "$WORK/a.out" "$WORK/b.out"; then
    cat "$WORK/a.out" "$WORK/b.out" >&2
    fail "wrk saw errors"
  fi
}

label() { if [ "$1" = redis ]; then echo redis; else echo "/$1"; fi; }

requests_of() { awk '/ requests in / { print $1 }' "$1"; }

commands_of() { # redis port -> commands it has processed so far
  redis-cli -h 127.0.0.1 -p "$1" info stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" { print $2 }'
}

# redis: loads both proxies from the warm-up's start to the window's end with two redis-benchmark clients each (SET
# and GET, no end), and measures the window: sets TA/TB (CPU ticks) and NA/NB (requests their redis-servers served).
measure_redis() { # warmup-seconds seconds addr-a addr-b pid-a pid-b
  local addr test out pid ta tb ca cb
  for addr in "$3" "$4"; do
    for test in set get; do
      out=$WORK/bench-$test-${addr##*:}.out
      redis-benchmark -h "${addr%:*}" -p "${addr##*:}" -t "$test" -c "$REDIS_CLIENTS" -d "$REDIS_VALUE_BYTES" -n 2000000000 -q > "$out" 2>&1 &
      LOAD_PIDS+=($!)
    done
  done
  sleep "$1"
  ta=$(cpu_ticks "$5"); tb=$(cpu_ticks "$6"); ca=$(commands_of "$REDIS_PORT_A"); cb=$(commands_of "$REDIS_PORT_B")
  sleep "$2"
  TA=$(($(cpu_ticks "$5") - ta)); TB=$(($(cpu_ticks "$6") - tb))
  NA=$(($(commands_of "$REDIS_PORT_A") - ca)); NB=$(($(commands_of "$REDIS_PORT_B") - cb))
  # A client that stopped by itself hit an error; the others are stopped here.
  for pid in "${LOAD_PIDS[@]}"; do
    kill -0 "$pid" 2> /dev/null || { cat "$WORK"/bench-*.out >&2; fail "a redis-benchmark client stopped during the measurement"; }
  done
  for pid in "${LOAD_PIDS[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
  for pid in "${LOAD_PIDS[@]}"; do wait "$pid" 2> /dev/null || true; done
  LOAD_PIDS=()
  if grep -qi 'error' "$WORK"/bench-*.out; then
    grep -i 'error' "$WORK"/bench-*.out | head -n 5 >&2
    fail "redis-benchmark saw errors"
  fi
  [ "$NA" -gt 0 ] && [ "$NB" -gt 0 ] || fail "a redis-server counted no requests in the window"
}

# A server that exits nonzero after SIGTERM had buffers still out: worth knowing, not worth stopping the run.
stop_servers() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2> /dev/null || echo "paired.sh: server $pid exited with $? after SIGTERM" >&2; done
  PIDS=()
}

total=$((ROUNDS * ${#MODE_LIST[@]} * ${#ENDPOINT_LIST[@]}))
say "$total paired measurements of $MEASURE_SECONDS s (after a $WARMUP_SECONDS s warm-up): about $(((total * (MEASURE_SECONDS + WARMUP_SECONDS + 3) + 59) / 60)) min"

for ((round = 1; round <= ROUNDS; round++)); do
  for endpoint in "${ENDPOINT_LIST[@]}"; do
    for mode in "${MODE_LIST[@]}"; do
      start_server "$BASELINE" "$WORK/a.log" "$endpoint" a "$BASELINE_POOL"
      pa=$STARTED_PID
      addr_a=$STARTED_ADDR
      start_server "$mode" "$WORK/b.log" "$endpoint" b direct
      pb=$STARTED_PID
      addr_b=$STARTED_ADDR
      if [ "$endpoint" = redis ]; then
        measure_redis "$WARMUP_SECONDS" "$MEASURE_SECONDS" "$addr_a" "$addr_b" "$pa" "$pb"
        ta=$TA tb=$TB na=$NA nb=$NB
      else
        load_both "$WARMUP_SECONDS" "$endpoint" "$addr_a" "$addr_b"
        ta=$(cpu_ticks "$pa")
        tb=$(cpu_ticks "$pb")
        load_both "$MEASURE_SECONDS" "$endpoint" "$addr_a" "$addr_b"
        ta=$(($(cpu_ticks "$pa") - ta))
        tb=$(($(cpu_ticks "$pb") - tb))
        na=$(requests_of "$WORK/a.out")
        nb=$(requests_of "$WORK/b.out")
      fi
      stop_servers
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$endpoint" "$mode" "$round" "$na" "$ta" "$nb" "$tb" >> "$RESULTS"
      say "round $round/$ROUNDS  $(printf '%-6s' "$(label "$endpoint")")  $BASELINE vs $(printf '%-8s' "$mode") $(awk -v na="$na" -v ta="$ta" -v nb="$nb" -v tb="$tb" -v hz="$CLK_TCK" \
        'BEGIN { a = ta / hz * 1e6 / na; b = tb / hz * 1e6 / nb; printf "A %.1f us/req (%d req), B %.1f us/req (%d req): CPU B/A %.3f", a, na, b, nb, b / a }')"
    done
  done
done

# Per comparison: the B/A CPU-per-request ratio of each round, their median, and their range.
summary() { # endpoint mode -> "median min max rounds"
  awk -F'\t' -v e="$1" -v m="$2" '$1 == e && $2 == m { print ($7 / $6) / ($5 / $4) }' "$RESULTS" | sort -g \
    | awk '{ v[NR] = $1 } END { med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f %.3f %.3f", med, v[1], v[NR]; for (i = 1; i <= NR; i++) r = r sprintf("%s%.3f", i > 1 ? " " : "", v[i]); print " " r }'
}

CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MACHINE="$CPU, $(nproc) cores, $(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release) (Linux $(uname -r)), .NET SDK $(dotnet --version)"
COMMIT=$(git rev-parse --short HEAD 2> /dev/null || echo unknown)

echo
A_TREE="the same tree"
[ -z "$BASELINE_REF" ] || A_TREE="commit ${BASELINE_COMMIT:0:7} ($BASELINE_REF)"
A_POOL="DirectBufferPool, like server B"
[ "$BASELINE_POOL" = direct ] || A_POOL="its own pool: Kestrel's for /plain and /echo, MemoryPool<byte>.Shared for redis"
echo "== $MACHINE; tree $COMMIT$DIRTY; server A from $A_TREE, on $A_POOL"
echo "== server CPU per request, mode / baseline ($BASELINE), both loaded at once (median, min-max of $ROUNDS rounds)"
mkdir -p "$OUT"
{
  echo "# Paired end-to-end: server CPU per request in each mode vs the baseline ($BASELINE), $TODAY"
  echo
  [ -z "$NOTE" ] || { echo "> $NOTE"; echo; }
  echo "Written by \`benchmarks/e2e/paired.sh --rounds $ROUNDS --seconds $MEASURE_SECONDS --warmup $WARMUP_SECONDS --modes $MODES --baseline $BASELINE${BASELINE_REF:+ --baseline-ref $BASELINE_REF} --baseline-pool $BASELINE_POOL${ENV_B[*]:+ --env-b ${ENV_B[*]}} --endpoints $ENDPOINTS\`."
  echo
  echo "- Machine: $MACHINE."
  echo "- Tree: commit \`$COMMIT\`$DIRTY (server B); server A from $A_TREE, on $A_POOL."
  echo "- Method: per round and comparison, two fresh servers, A in the baseline mode ($BASELINE) and B in the mode named"
  echo "  (B always on \`DirectBufferPool\`${ENV_B[*]:+, with ${ENV_B[*]} in its environment}), loaded at once over the same ${MEASURE_SECONDS} s after a ${WARMUP_SECONDS} s warm-up."
  echo "  CPU per request = the server's user + system time over the window (\`/proc/PID/stat\`, 1/$CLK_TCK s ticks) / the"
  echo "  requests it served in the window. The ratio is B / A: 1.03 means the mode spends 3 % more server CPU per request."
  echo "  A row whose mode is the baseline, on the same pool, compares two like servers: the method's noise."
  if [ -n "$WANTS_HTTP" ]; then
    echo "- /plain and /echo: benchmarks/OffHeapTracker.E2E.Kestrel, each loaded by its own \`wrk -t 1 -c 16\`; requests are"
    echo "  those wrk completed. /echo is \`POST\` of ${ECHO_BYTES} bytes, sent back through the pipes; /plain a 13-byte response."
  fi
  if [ -n "$WANTS_REDIS" ]; then
    echo "- redis: samples/TcpProxy in front of a redis-server of its own ($(redis-server --version | awk '{ print $3 }'), no persistence),"
    echo "  loaded by two \`redis-benchmark -c $REDIS_CLIENTS -d $REDIS_VALUE_BYTES\` clients, one \`-t set\` and one \`-t get\`, running"
    echo "  from the warm-up's start to the window's end; requests are the commands its redis-server counted in the window"
    echo "  (\`INFO\` total_commands_processed)."
  fi
  echo
  echo "| endpoint | mode | CPU per request, B / A (median) | min | max | every round |"
  echo "|---|---|---:|---:|---:|---|"
} > "$OUT/report.md"
for endpoint in "${ENDPOINT_LIST[@]}"; do
  for mode in "${MODE_LIST[@]}"; do
    read -r med lo hi rounds <<< "$(summary "$endpoint" "$mode" | awk '{ printf "%s %s %s ", $1, $2, $3; for (i = 4; i <= NF; i++) printf "%s%s", $i, (i < NF ? "," : ""); print "" }')"
    printf '  %-6s %-9s %s  (%s-%s)  %s\n' "$(label "$endpoint")" "$mode" "$med" "$lo" "$hi" "${rounds//,/ }"
    echo "| $(label "$endpoint") | $mode | $med | $lo | $hi | ${rounds//,/ } |" >> "$OUT/report.md"
  done
done
{
  echo
  echo "## Every measurement"
  echo
  echo "| endpoint | mode (B) | round | A requests | A CPU ticks | B requests | B CPU ticks |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  awk -F'\t' '{ printf "| %s%s | %s | %s | %s | %s | %s | %s |\n", ($1 == "redis" ? "" : "/"), $1, $2, $3, $4, $5, $6, $7 }' "$RESULTS"
} >> "$OUT/report.md"
echo
say "report: $OUT/report.md"
