#!/usr/bin/env bash
# End-to-end benchmarks of the buffer monitor under load, outside `dotnet test`:
#
#   proxy    redis-benchmark (SET and GET, 50 clients, 512 B values) through samples/TcpProxy to a real redis-server
#   kestrel  wrk (GET /plain, POST /echo of 16 KiB, 32 connections) against benchmarks/OffHeapTracker.E2E.Kestrel
#
# Each server runs with the monitor off, budgeted, every and none, chosen only by environment variables on the
# server process, and beside the untracked baselines: TcpProxy on MemoryPool<byte>.Shared, Kestrel on its own pool.
# Every round runs every configuration once, round-robin (each round starts one configuration later), so the
# noise of this shared machine falls on all of them alike. Each measurement has a discarded warm-up before it.
#
#   benchmarks/e2e/run.sh [--rounds N] [--seconds S] [--warmup S] [--only proxy|kestrel] [--out DIR] [--note TEXT]
#
#   --rounds N     rounds over all configurations (default 2); the report gives the median of the rounds
#   --seconds S    length of each measurement (default 10): wrk -d S; redis-benchmark gets a request count sized
#                  from its warm-up to take about S seconds for SET and GET together
#   --warmup S     length of each discarded warm-up (default 3)
#   --only W       run only the proxy or only the kestrel workloads
#   --out DIR      where report.md goes (default benchmarks/results/e2e-<yyyy-mm-dd>)
#   --note TEXT    a line put at the top of the report, such as what the run is for
#
# The defaults take about 8 minutes on a 2-core machine (the build included). It builds Release once, installs
# redis-server, redis-tools and wrk from apt when they are missing (as root, or through sudo), binds everything to
# 127.0.0.1, starts and stops each server per configuration, and leaves nothing running, whatever happens.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

ROUNDS=2
MEASURE_SECONDS=10
WARMUP_SECONDS=3
ONLY=all
OUT=""
NOTE=""

usage() {
  sed -n '/^#   benchmarks\/e2e\/run.sh/,/^#   --note/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

positive() { # name value
  [[ $2 =~ ^[1-9][0-9]{0,3}$ ]] || { echo "run.sh: $1 must be a whole number from 1 to 9999, not '$2'" >&2; exit 2; }
}

while [ $# -gt 0 ]; do
  case $1 in
    --rounds) [ $# -ge 2 ] || usage; positive "$1" "$2"; ROUNDS=$2; shift 2 ;;
    --seconds) [ $# -ge 2 ] || usage; positive "$1" "$2"; MEASURE_SECONDS=$2; shift 2 ;;
    --warmup) [ $# -ge 2 ] || usage; positive "$1" "$2"; WARMUP_SECONDS=$2; shift 2 ;;
    --only)
      [ $# -ge 2 ] || usage
      case $2 in proxy | kestrel) ONLY=$2 ;; *) echo "run.sh: --only must be 'proxy' or 'kestrel', not '$2'" >&2; exit 2 ;; esac
      shift 2 ;;
    --out) [ $# -ge 2 ] || usage; OUT=$2; shift 2 ;;
    --note) [ $# -ge 2 ] || usage; NOTE=$2; shift 2 ;;
    -h | --help) usage ;;
    *) echo "run.sh: unknown option '$1'" >&2; usage ;;
  esac
done

wants() { [ "$ONLY" = all ] || [ "$ONLY" = "$1" ]; }

TODAY=$(date +%F)
OUT=${OUT:-benchmarks/results/e2e-$TODAY}

# The configurations, named <pool>-<monitor>. The baselines run with the monitor off only: it cannot see their buffers.
PROXY_CONFIGS=(direct-off direct-budgeted direct-every direct-none shared-off)
KESTREL_CONFIGS=(kestrel-off direct-off direct-budgeted direct-every direct-none)
WORKLOADS=()
wants proxy && WORKLOADS+=(proxy-set proxy-get)
wants kestrel && WORKLOADS+=(kestrel-plain kestrel-echo)

REDIS_CLIENTS=50
REDIS_VALUE_BYTES=512
WRK_THREADS=2
WRK_CONNECTIONS=32
ECHO_BYTES=16384
PROXY_BIN=samples/TcpProxy/bin/Release/net10.0/TcpProxy
KESTREL_BIN=benchmarks/OffHeapTracker.E2E.Kestrel/bin/Release/net10.0/OffHeapTracker.E2E.Kestrel

WORK=$(mktemp -d "${TMPDIR:-/tmp}/offheaptracker-e2e.XXXXXX")
RESULTS=$WORK/results.tsv     # workload, config, round, rps, detail, server CPU microseconds per request
SHUTDOWNS=$WORK/shutdowns.tsv # round, group, config, exit code, last line
COMMANDS=$WORK/commands.txt
: > "$RESULTS"
: > "$SHUTDOWNS"
: > "$COMMANDS"

SERVER_PID=""
REDIS_PID=""
CLIENT_PID=""
ADDED_POLICY_RC=0
PROBLEMS=0
INSTALLED=""

# Stops a process we started: SIGTERM, then SIGKILL after 10 s. Sets STOP_RC to its exit status.
stop_pid() { # pid name
  local pid=$1 i
  STOP_RC=0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "run.sh: $2 (pid $pid) still running 10 s after SIGTERM: killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || STOP_RC=$?
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$CLIENT_PID" ]; then stop_pid "$CLIENT_PID" "load client"; fi
  if [ -n "$SERVER_PID" ]; then stop_pid "$SERVER_PID" server; fi
  if [ -n "$REDIS_PID" ]; then stop_pid "$REDIS_PID" redis-server; fi
  if [ "$ADDED_POLICY_RC" = 1 ]; then ${SUDO:-} rm -f /usr/sbin/policy-rc.d; fi
  if [ "$rc" -eq 0 ]; then
    rm -rf "$WORK"
  else
    echo "run.sh: stopped (exit $rc); every process it started has been stopped; logs are in $WORK" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "run.sh: $*" >&2
  exit 1
}

say() { printf '%s  %s\n' "$(date +%T)" "$*"; }

# Appends a command, exactly as run, to the report's list; the temporary directory is shown as $WORK.
record() {
  local arg line=""
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then line+="$arg "; else line+="$(printf '%q' "$arg") "; fi
  done
  printf '%s\n' "${line% }" | sed "s|$WORK|\$WORK|g" >> "$COMMANDS"
}

# --- tools ---------------------------------------------------------------------------------------------------------

ensure_tools() {
  local missing=()
  if wants proxy; then
    command -v redis-server > /dev/null || missing+=(redis-server)
    { command -v redis-benchmark > /dev/null && command -v redis-cli > /dev/null; } || missing+=(redis-tools)
  fi
  if wants kestrel; then
    command -v wrk > /dev/null || missing+=(wrk)
  fi
  [ ${#missing[@]} -eq 0 ] && return
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo > /dev/null || fail "needs ${missing[*]} and cannot install them: not root and no sudo"
    SUDO=sudo
  fi
  command -v apt-get > /dev/null || fail "needs ${missing[*]}; install them (no apt-get here)"
  say "installing ${missing[*]} from apt"
  # Debian's redis-server package starts a system-wide redis on port 6379 when it is installed. A policy-rc.d that
  # answers 101 (as container images ship) stops that, so nothing but the script's own redis ever runs.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d > /dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    ADDED_POLICY_RC=1
  fi
  echo "# tools missing on this machine" >> "$COMMANDS"
  record $SUDO apt-get update -qq
  $SUDO apt-get update -qq
  record $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > "$WORK/apt.log" 2>&1 \
    || { tail -n 20 "$WORK/apt.log" >&2; fail "apt-get install ${missing[*]} failed"; }
  INSTALLED=" (${missing[*]} installed by this run, from apt)"
  if [ "$ADDED_POLICY_RC" = 1 ]; then
    $SUDO rm -f /usr/sbin/policy-rc.d
    ADDED_POLICY_RC=0
  fi
}

# free_port
. "$ROOT/benchmarks/e2e/common.sh"

# --- servers -------------------------------------------------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)

# CPU time the process has used so far, all threads, user + system, in clock ticks (/proc/PID/stat fields 14 and 15;
# the command name in field 2 may hold spaces, so the fields are counted after its closing parenthesis).
cpu_ticks() { # pid
  sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# Microseconds of CPU per request from two cpu_ticks readings.
cpu_per_request() { # ticks-before ticks-after requests
  awk -v a="$1" -v b="$2" -v n="$3" -v hz="$CLK_TCK" 'BEGIN { if (n <= 0) print ""; else printf "%.3f", (b - a) / hz * 1e6 / n }'
}

monitor_env() { # config -> the server's OFFHEAPTRACKER_ variables, one per line
  local mode=${1#*-}
  if [ "$mode" != off ]; then
    printf '%s\n' OFFHEAPTRACKER_MONITOR=1 "OFFHEAPTRACKER_MONITOR_STACKS=$mode"
  fi
}

env_text() { # config -> the server's monitor variables, for the report
  local envs
  envs=$(monitor_env "$1" | paste -sd ' ' -)
  if [ -n "$envs" ]; then echo "\`$envs\`"; else echo "none (every \`OFFHEAPTRACKER_*\` variable unset)"; fi
}

# Starts a server for a configuration and waits for its ready line; sets SERVER_PID and SERVER_ADDR.
start_server() { # config log ready-regex (one group: host:port) command...
  local config=$1 log=$2 ready=$3 i var
  shift 3
  local envargs=()
  # The server sees exactly this configuration's monitor variables, whatever the calling shell exported.
  for var in $(compgen -e); do
    if [[ $var == OFFHEAPTRACKER_* ]]; then envargs+=(-u "$var"); fi
  done
  while IFS= read -r var; do envargs+=("$var"); done < <(monitor_env "$config")
  record env "${envargs[@]}" "$@"
  : > "$log" # before the server's own redirection, so that the wait below never reads a file not yet there
  env "${envargs[@]}" "$@" > "$log" 2>&1 &
  SERVER_PID=$!
  for ((i = 0; i < 300; i++)); do
    if grep -qE "$ready" "$log"; then break; fi
    if ! kill -0 "$SERVER_PID" 2> /dev/null; then
      cat "$log" >&2
      SERVER_PID=""
      fail "$config: the server exited before it was ready"
    fi
    sleep 0.1
  done
  grep -qE "$ready" "$log" || { cat "$log" >&2; fail "$config: no ready line within 30 s"; }
  SERVER_ADDR=$(sed -nE "s|.*$ready.*|\1|p" "$log" | head -n 1)
  local expected="monitor on"
  [ "${config#*-}" = off ] && expected="monitor off"
  grep -q "$expected" "$log" || { cat "$log" >&2; fail "$config: the server did not report '$expected'"; }
}

stop_server() { # round group config log
  local pid=$SERVER_PID last
  SERVER_PID=""
  stop_pid "$pid" "$3 server"
  last=$(grep '^shut down:' "$4" | tail -n 1 || true)
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$STOP_RC" "${last:-(no shutdown line)}" >> "$SHUTDOWNS"
  if [ "$STOP_RC" -ne 0 ] || [ -z "$last" ]; then
    PROBLEMS=$((PROBLEMS + 1))
    echo "run.sh: $2 $3 server exited with $STOP_RC: ${last:-no shutdown line}" >&2
  fi
}

start_redis() {
  REDIS_PORT=$(free_port)
  local cmd=(redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$WORK" --daemonize no)
  record "${cmd[@]}"
  "${cmd[@]}" > "$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    if [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2> /dev/null || true)" = PONG ]; then return; fi
    kill -0 "$REDIS_PID" 2> /dev/null || { cat "$WORK/redis.log" >&2; REDIS_PID=""; fail "redis-server exited"; }
    sleep 0.1
  done
  cat "$WORK/redis.log" >&2
  fail "redis-server did not answer PING within 10 s"
}

# Runs a load client in the background, so a signal stops the script (and through the trap the client) at once.
run_client() { # output command...
  local out=$1 rc=0
  shift
  "$@" > "$out" 2>&1 &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || rc=$?
  CLIENT_PID=""
  [ "$rc" -eq 0 ] || { cat "$out" >&2; fail "$1 exited with $rc"; }
}

# --- the proxy workload --------------------------------------------------------------------------------------------

# The request count for SET and GET (each) to take about S seconds together at the given rates.
requests_for() { # set-rps get-rps seconds
  awk -v a="$1" -v b="$2" -v s="$3" 'BEGIN { n = int(s / (1 / a + 1 / b)); if (n < 1000) n = 1000; print n }'
}

# Sets BENCH_SET and BENCH_GET (requests/s).
redis_bench() { # addr requests output record?
  local cmd=(redis-benchmark -h "${1%:*}" -p "${1##*:}" -t "set,get" -c "$REDIS_CLIENTS" -d "$REDIS_VALUE_BYTES" -n "$2" -q --csv)
  [ "$4" = yes ] && record "${cmd[@]}"
  run_client "$3" "${cmd[@]}"
  BENCH_SET=$(awk -F, '{ gsub(/"/, "") } $1 == "SET" { print $2 }' "$3")
  BENCH_GET=$(awk -F, '{ gsub(/"/, "") } $1 == "GET" { print $2 }' "$3")
  if [ -z "$BENCH_SET" ] || [ -z "$BENCH_GET" ]; then
    cat "$3" >&2
    fail "no SET/GET rates in redis-benchmark's output"
  fi
}

declare -A LAST_SET LAST_GET
ANY_SET=""
ANY_GET=""

run_proxy() { # config round
  local config=$1 round=$2 log=$WORK/proxy-$1-$2.log n warm
  echo "# round $round, proxy, $config" >> "$COMMANDS"
  start_server "$config" "$log" 'proxying ([0-9.]+:[0-9]+) ->' \
    "$PROXY_BIN" --listen 127.0.0.1:0 --upstream "127.0.0.1:$REDIS_PORT" --pool "${config%%-*}"
  [ "$(redis-cli -h "${SERVER_ADDR%:*}" -p "${SERVER_ADDR##*:}" ping)" = PONG ] || fail "$config: PING through the proxy did not answer PONG"

  # The warm-up is sized from the last measurement (this configuration's, else any), and sizes the measurement.
  if [ -n "${LAST_SET[$config]:-}" ]; then
    warm=$(requests_for "${LAST_SET[$config]}" "${LAST_GET[$config]}" "$WARMUP_SECONDS")
  elif [ -n "$ANY_SET" ]; then
    warm=$(requests_for "$ANY_SET" "$ANY_GET" "$WARMUP_SECONDS")
  else
    warm=10000
  fi
  redis_bench "$SERVER_ADDR" "$warm" "$WORK/warmup.out" no
  n=$(requests_for "$BENCH_SET" "$BENCH_GET" "$MEASURE_SECONDS")
  local ticks
  ticks=$(cpu_ticks "$SERVER_PID")
  redis_bench "$SERVER_ADDR" "$n" "$WORK/proxy-$config-$round.out" yes
  # One CPU figure for the SET and GET runs together (one client run): both rows carry it.
  local cpu
  cpu=$(cpu_per_request "$ticks" "$(cpu_ticks "$SERVER_PID")" $((2 * n)))
  LAST_SET[$config]=$BENCH_SET
  LAST_GET[$config]=$BENCH_GET
  ANY_SET=$BENCH_SET
  ANY_GET=$BENCH_GET
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' proxy-set "$config" "$round" "$BENCH_SET" "-n $n" "$cpu" >> "$RESULTS"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' proxy-get "$config" "$round" "$BENCH_GET" "-n $n" "$cpu" >> "$RESULTS"
  stop_server "$round" proxy "$config" "$log"
  say "round $round/$ROUNDS  proxy    $(printf '%-16s' "$config") SET $(printf '%8.0f' "$BENCH_SET")/s  GET $(printf '%8.0f' "$BENCH_GET")/s  (-n $n)  $cpu us CPU/request"
}

# --- the kestrel workload ------------------------------------------------------------------------------------------

# Sets BENCH_RPS, BENCH_REQUESTS and BENCH_NOTE (wrk's error lines, if any).
wrk_bench() { # seconds url output record? [lua]
  local cmd=(wrk -t "$WRK_THREADS" -c "$WRK_CONNECTIONS" -d "${1}s")
  [ -n "${5:-}" ] && cmd+=(-s "$5")
  cmd+=("$2")
  [ "$4" = yes ] && record "${cmd[@]}"
  run_client "$3" "${cmd[@]}"
  BENCH_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$3")
  [ -n "$BENCH_RPS" ] || { cat "$3" >&2; fail "no Requests/sec in wrk's output"; }
  BENCH_REQUESTS=$(awk '/ requests in / { print $1 }' "$3")
  BENCH_NOTE=$(grep -E 'Non-2xx|Socket errors' "$3" | tr -s ' ' | paste -sd ';' - || true)
}

check_kestrel() { # config addr
  command -v curl > /dev/null || return 0
  [ "$(curl -sS "http://$2/plain")" = "Hello, World!" ] || fail "$1: GET /plain did not answer 'Hello, World!'"
  curl -sS --data-binary "@$WORK/payload.bin" -H 'Content-Type: application/octet-stream' "http://$2/echo" \
    | cmp -s - "$WORK/payload.bin" || fail "$1: POST /echo did not send the body back"
}

run_kestrel() { # config round
  local config=$1 round=$2 log=$WORK/kestrel-$1-$2.log endpoint lua workload line="" ticks cpu
  echo "# round $round, kestrel, $config" >> "$COMMANDS"
  start_server "$config" "$log" 'listening on http://([0-9.]+:[0-9]+);' \
    "$KESTREL_BIN" --listen 127.0.0.1:0 --pool "${config%%-*}"
  check_kestrel "$config" "$SERVER_ADDR"
  for endpoint in plain echo; do
    lua=""
    [ "$endpoint" = echo ] && lua=$WORK/echo.lua
    workload=kestrel-$endpoint
    wrk_bench "$WARMUP_SECONDS" "http://$SERVER_ADDR/$endpoint" "$WORK/warmup.out" no "$lua"
    ticks=$(cpu_ticks "$SERVER_PID")
    wrk_bench "$MEASURE_SECONDS" "http://$SERVER_ADDR/$endpoint" "$WORK/$workload-$config-$round.out" yes "$lua"
    cpu=$(cpu_per_request "$ticks" "$(cpu_ticks "$SERVER_PID")" "${BENCH_REQUESTS:-0}")
    if [ -n "$BENCH_NOTE" ]; then
      PROBLEMS=$((PROBLEMS + 1))
      echo "run.sh: $workload $config round $round: $BENCH_NOTE" >&2
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$config" "$round" "$BENCH_RPS" "${BENCH_NOTE:-}" "$cpu" >> "$RESULTS"
    line+=" /$endpoint $(printf '%8.0f' "$BENCH_RPS")/s ${cpu}us"
  done
  stop_server "$round" kestrel "$config" "$log"
  say "round $round/$ROUNDS  kestrel  $(printf '%-16s' "$config")$line"
}

# --- statistics ----------------------------------------------------------------------------------------------------

value_of() { # workload config round [column: 4 requests/s (default), 6 server CPU microseconds per request]
  awk -F'\t' -v w="$1" -v c="$2" -v r="$3" -v k="${4:-4}" '$1 == w && $2 == c && $3 == r { print $k }' "$RESULTS"
}

median_of() { # workload config [column: 4 requests/s (default), 6 CPU per request]
  awk -F'\t' -v w="$1" -v c="$2" -v k="${3:-4}" '$1 == w && $2 == c && $k != "" { print $k }' "$RESULTS" | sort -g \
    | awk '{ v[NR] = $1 } END { if (NR == 0) exit; print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.3f", a / b }'; }

percent() { awk -v r="$1" 'BEGIN { if (r == "n/a") print ""; else printf "%+.1f %%", (r - 1) * 100 }'; }

configs_of() { # workload
  case $1 in proxy-*) echo "${PROXY_CONFIGS[@]}" ;; *) echo "${KESTREL_CONFIGS[@]}" ;; esac
}

baseline_of() { # workload
  case $1 in proxy-*) echo shared-off ;; *) echo kestrel-off ;; esac
}

title_of() {
  case $1 in
    proxy-set) echo "proxy SET: redis-benchmark -t set through TcpProxy to redis-server" ;;
    proxy-get) echo "proxy GET: redis-benchmark -t get through TcpProxy to redis-server" ;;
    kestrel-plain) echo "kestrel GET /plain: wrk, a 13-byte text response" ;;
    kestrel-echo) echo "kestrel POST /echo: wrk, 16 KiB body sent back" ;;
  esac
}

# The comparisons the issue asks for: "numerator denominator label" per line.
comparisons_of() { # workload
  local base
  base=$(baseline_of "$1")
  printf '%s\n' "direct-budgeted direct-off budgeted / off (direct pool)" \
    "direct-every direct-off every / off (direct pool)" \
    "direct-none direct-off none / off (direct pool)" \
    "direct-off $base direct-off / $base"
}

# Numerator / denominator in each round: requests/s (column 4, the default), or server CPU per request (column 6,
# where above 1 means the numerator costs more).
paired_ratios() { # workload numerator denominator [column]
  local r out=""
  for ((r = 1; r <= ROUNDS; r++)); do
    out+="$(ratio "$(value_of "$1" "$2" "$r" "${4:-4}")" "$(value_of "$1" "$3" "$r" "${4:-4}")") "
  done
  echo "${out% }"
}

# --- the run -------------------------------------------------------------------------------------------------------

ensure_tools

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
BUILDS=()
wants proxy && BUILDS+=(samples/TcpProxy/TcpProxy.csproj)
wants kestrel && BUILDS+=(benchmarks/OffHeapTracker.E2E.Kestrel/OffHeapTracker.E2E.Kestrel.csproj)
for project in "${BUILDS[@]}"; do
  say "building $project (Release)"
  record dotnet build -c Release "$project"
  dotnet build -c Release "$project" > "$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log" >&2; fail "build of $project failed"; }
done

# POST bodies need a wrk script.
printf 'wrk.method = "POST"\nwrk.body = string.rep("a", %d)\nwrk.headers["Content-Type"] = "application/octet-stream"\n' "$ECHO_BYTES" > "$WORK/echo.lua"
head -c "$ECHO_BYTES" /dev/urandom > "$WORK/payload.bin"

per_round=0
wants proxy && per_round=$((per_round + ${#PROXY_CONFIGS[@]} * (WARMUP_SECONDS + MEASURE_SECONDS + 2)))
wants kestrel && per_round=$((per_round + ${#KESTREL_CONFIGS[@]} * (2 * (WARMUP_SECONDS + MEASURE_SECONDS) + 2)))
say "$ROUNDS round(s) of $ONLY workloads, $MEASURE_SECONDS s per measurement after a $WARMUP_SECONDS s warm-up: about $(((ROUNDS * per_round + 59) / 60)) min"

if wants proxy; then
  echo "# the upstream of every proxy configuration, for the whole session" >> "$COMMANDS"
  start_redis
fi
for ((round = 1; round <= ROUNDS; round++)); do
  if wants proxy; then
    for ((k = 0; k < ${#PROXY_CONFIGS[@]}; k++)); do
      run_proxy "${PROXY_CONFIGS[(k + round - 1) % ${#PROXY_CONFIGS[@]}]}" "$round"
    done
  fi
  if wants kestrel; then
    for ((k = 0; k < ${#KESTREL_CONFIGS[@]}; k++)); do
      run_kestrel "${KESTREL_CONFIGS[(k + round - 1) % ${#KESTREL_CONFIGS[@]}]}" "$round"
    done
  fi
done
if [ -n "$REDIS_PID" ]; then
  stop_pid "$REDIS_PID" redis-server
  REDIS_PID=""
fi

# --- what to print and report --------------------------------------------------------------------------------------

CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
CORES=$(nproc)
OS=$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release)
SDK=$(dotnet --version)
RUNTIME=$(dotnet --list-runtimes | awk '$1 == "Microsoft.NETCore.App" && $2 ~ /^10\./ { v = $2 } END { print v }')
MACHINE="$CPU, $CORES cores, $OS (Linux $(uname -r)), .NET SDK $SDK, runtime Microsoft.NETCore.App $RUNTIME"
COMMIT=$(git rev-parse --short HEAD 2> /dev/null || echo unknown)
BRANCH=$(git rev-parse --abbrev-ref HEAD 2> /dev/null || echo unknown)
DIRTY=""
git diff --quiet HEAD -- src samples benchmarks/OffHeapTracker.E2E.Kestrel 2> /dev/null || DIRTY=" (with uncommitted changes to the code under test)"
if grep -rqs OFFHEAPTRACKER_MONITOR_STACKS src/OffHeapTracker; then
  STACKS_NOTE="yes: budgeted, every and none are the library's stack policies"
else
  STACKS_NOTE="no: this tree's library does not read OFFHEAPTRACKER_MONITOR_STACKS, so budgeted, every and none all ran its default stack capture"
fi
TOOLS=""
wants proxy && TOOLS+="$(redis-server --version | awk '{ print $1, $2, $3 }'), redis-benchmark from the same redis-tools; "
wants kestrel && TOOLS+="$({ wrk -v 2>&1 || true; } | head -n 1 | awk '{ print $1, $2 }'); "
TOOLS="${TOOLS%; }$INSTALLED"

echo
echo "== $MACHINE"
echo "== tree $COMMIT ($BRANCH)$DIRTY; library reads OFFHEAPTRACKER_MONITOR_STACKS: $STACKS_NOTE"
for workload in "${WORKLOADS[@]}"; do
  echo
  echo "== $(title_of "$workload") (requests/s, median of $ROUNDS round(s))"
  for config in $(configs_of "$workload"); do
    printf '  %-18s %10.0f\n' "$config" "$(median_of "$workload" "$config")"
  done
  while read -r num den label; do
    r=$(ratio "$(median_of "$workload" "$num")" "$(median_of "$workload" "$den")")
    printf '  %-34s %s  %-9s per round: %s\n' "$label" "$r" "$(percent "$r")" "$(paired_ratios "$workload" "$num" "$den")"
  done < <(comparisons_of "$workload")
  echo "  server CPU per request (first / second; above 1 costs more):"
  while read -r num den label; do
    r=$(ratio "$(median_of "$workload" "$num" 6)" "$(median_of "$workload" "$den" 6)")
    printf '  %-34s %s  %-9s per round: %s\n' "$label" "$r" "$(percent "$r")" "$(paired_ratios "$workload" "$num" "$den" 6)"
  done < <(comparisons_of "$workload")
done

mkdir -p "$OUT"
REPORT=$OUT/report.md
{
  echo "# End-to-end benchmarks: the buffer monitor under load, $TODAY"
  echo
  if [ -n "$NOTE" ]; then
    echo "> $NOTE"
    echo
  fi
  echo "Written by \`benchmarks/e2e/run.sh --rounds $ROUNDS --seconds $MEASURE_SECONDS --warmup $WARMUP_SECONDS$([ "$ONLY" = all ] || echo " --only $ONLY")\`."
  echo
  echo "- Machine: $MACHINE."
  echo "- Tree: commit \`$COMMIT\` on \`$BRANCH\`$DIRTY."
  echo "- Does the library read \`OFFHEAPTRACKER_MONITOR_STACKS\`? $STACKS_NOTE."
  echo "- Tools: $TOOLS."
  checks="PING answered through the proxy; GET /plain and POST /echo answered correctly"
  [ "$ONLY" = proxy ] && checks="PING answered through the proxy"
  [ "$ONLY" = kestrel ] && checks="GET /plain and POST /echo answered correctly"
  echo "- Method: $ROUNDS round(s); each round runs every configuration once, round-robin, each round starting one"
  echo "  configuration later. Per configuration the server is started and checked ($checks),"
  echo "  loaded for a discarded ${WARMUP_SECONDS} s warm-up per workload, then measured for about ${MEASURE_SECONDS} s, and stopped with SIGTERM."
  if wants proxy; then
    echo "  redis-benchmark has no duration option: its request count (\`-n\`, for SET and for GET) is sized from the"
    echo "  warm-up's rates to take about ${MEASURE_SECONDS} s for both together."
  fi
  echo "  Everything runs on 127.0.0.1 on this one machine, load generators included, so read the ratios between"
  echo "  configurations, not the absolute rates."
  echo
  echo "## Configurations"
  echo
  echo "| configuration | server | pool | environment of the server process |"
  echo "|---|---|---|---|"
  for config in "${PROXY_CONFIGS[@]}"; do
    wants proxy || break
    pool=${config%%-*}
    if [ "$pool" = shared ]; then pool_text="\`MemoryPool<byte>.Shared\` (\`--pool shared\`)"; else pool_text="\`DirectBufferPool\` (\`--pool direct\`)"; fi
    echo "| $config | TcpProxy | $pool_text | $(env_text "$config") |"
  done
  for config in "${KESTREL_CONFIGS[@]}"; do
    wants kestrel || break
    pool=${config%%-*}
    if [ "$pool" = kestrel ]; then pool_text="Kestrel's own (\`--pool kestrel\`)"; else pool_text="\`AddDirectBufferPool()\` (\`--pool direct\`)"; fi
    echo "| $config | OffHeapTracker.E2E.Kestrel | $pool_text | $(env_text "$config") |"
  done
  echo
  echo "## Medians and ratios"
  echo
  echo "Ratios are requests/s of the first configuration over the second (below 1: slower), from the medians; \"per"
  echo "round\" pairs the two configurations' rates within each round, to show the spread."
  echo
  echo "| workload | comparison | ratio | change | per round |"
  echo "|---|---|---:|---:|---|"
  for workload in "${WORKLOADS[@]}"; do
    while read -r num den label; do
      r=$(ratio "$(median_of "$workload" "$num")" "$(median_of "$workload" "$den")")
      echo "| ${workload/-/ } | $label | $r | $(percent "$r") | $(paired_ratios "$workload" "$num" "$den") |"
    done < <(comparisons_of "$workload")
  done
  echo
  echo "## Server CPU per request"
  echo
  echo "The server process's CPU time (user + system, every thread, from \`/proc/PID/stat\`) over the measured run,"
  echo "divided by the requests served: the monitor's cost in CPU, which the load generators sharing the machine do not"
  echo "blur as they do requests/s. A ratio of 1.03 means the first configuration spends 3 % more server CPU per request"
  echo "(a 0.97× throughput target is a CPU ratio of at most 1.031 for a server that is CPU-bound). The proxy's SET and GET"
  echo "run in one redis-benchmark call, so they share one figure. Resolution: one clock tick, 1/$CLK_TCK s."
  echo
  echo "| workload | comparison | CPU ratio | change | per round |"
  echo "|---|---|---:|---:|---|"
  for workload in "${WORKLOADS[@]}"; do
    [ "$workload" = proxy-get ] && continue
    while read -r num den label; do
      r=$(ratio "$(median_of "$workload" "$num" 6)" "$(median_of "$workload" "$den" 6)")
      name=${workload/-/ }
      [ "$workload" = proxy-set ] && name="proxy SET+GET"
      echo "| $name | $label | $r | $(percent "$r") | $(paired_ratios "$workload" "$num" "$den" 6) |"
    done < <(comparisons_of "$workload")
  done
  for workload in "${WORKLOADS[@]}"; do
    echo
    echo "## $(title_of "$workload")"
    echo
    header="| configuration |"
    rule="|---|"
    for ((r = 1; r <= ROUNDS; r++)); do header+=" round $r |"; rule+="---:|"; done
    echo "$header median | vs direct-off | CPU µs/request (median) | notes |"
    echo "$rule---:|---:|---:|---|"
    off=$(median_of "$workload" direct-off)
    for config in $(configs_of "$workload"); do
      row="| $config |"
      for ((r = 1; r <= ROUNDS; r++)); do row+=" $(printf '%.0f' "$(value_of "$workload" "$config" "$r")") |"; done
      med=$(median_of "$workload" "$config")
      notes=$(awk -F'\t' -v w="$workload" -v c="$config" '$1 == w && $2 == c && $5 != "" { printf "%sround %s: %s", sep, $3, $5; sep = "; " }' "$RESULTS")
      echo "$row $(printf '%.0f' "$med") | $(ratio "$med" "$off") | $(median_of "$workload" "$config" 6) | $notes |"
    done
  done
  echo
  echo "## Server shutdowns"
  echo
  echo "Each server's exit code and last line after SIGTERM (a DirectBufferPool server exits 1 when buffers are still out)."
  echo
  echo "| round | server | configuration | exit | last line |"
  echo "|---:|---|---|---:|---|"
  awk -F'\t' '{ printf "| %s | %s | %s | %s | `%s` |\n", $1, $2, $3, $4, $5 }' "$SHUTDOWNS"
  echo
  echo "## Commands"
  echo
  echo "Every command the script ran to build, serve and measure, in order; warm-ups are the same client commands with"
  echo "\`-d ${WARMUP_SECONDS}s\` (wrk) or a smaller \`-n\` (redis-benchmark) and are not listed. \`\$WORK\` is the script's temporary"
  echo "directory."
  if wants kestrel; then
    echo
    echo "\`\$WORK/echo.lua\`, the wrk script for POST /echo:"
    echo
    echo '```lua'
    cat "$WORK/echo.lua"
    echo '```'
  fi
  echo
  echo '```'
  cat "$COMMANDS"
  echo '```'
} > "$REPORT"

echo
say "report: $REPORT"
if [ "$PROBLEMS" -gt 0 ]; then
  fail "$PROBLEMS problem(s) above (HTTP errors, or a server that did not shut down cleanly): the figures need checking"
fi
