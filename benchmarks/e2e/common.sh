# Shell functions shared by run.sh and paired.sh; sourced, not run. Each script defines fail() before calling them.

# A port nothing listens on, below Linux's ephemeral range (32768 and up) so that outgoing connections do not take it.
free_port() {
  local port i
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then
      echo "$port"
      return
    fi
  done
  fail "found no free port on 127.0.0.1"
}
