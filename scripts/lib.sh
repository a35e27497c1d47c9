# lib.sh - shell helpers for the scripts (sourced, not run).

# free_port - print a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$(( 20000 + RANDOM % 40000 ))
    if ! ss -Htln "sport = :$port" | grep -q .; then
      echo "$port"
      return 0
    fi
  done
  echo "free_port: no free port found" >&2
  return 1
}

# wait_for_port PORT SECONDS - wait until something listens on 127.0.0.1:PORT.
wait_for_port() {
  local port=$1 seconds=${2:-30}
  for _ in $(seq 1 $((seconds * 10))); do
    ss -Htln "sport = :$port" | grep -q . && return 0
    sleep 0.1
  done
  echo "wait_for_port: nothing listens on 127.0.0.1:$port after ${seconds}s" >&2
  return 1
}
