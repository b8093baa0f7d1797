# Helpers shared by the load-test scripts (sourced, not run).

# free_port: prints a TCP port free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL WHAT [TIMEOUT_S] [PID]: polls until URL answers 2xx (default deadline 30 s). Fails (status 1,
# the reason on stderr) at the deadline, or at once when PID is given and that process has exited.
wait_http() {
  local deadline=$((SECONDS + ${3:-30}))
  until curl -fs -m 2 -o /dev/null "$1"; do
    if [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null; then
      echo "$2 exited during start-up" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "timed out waiting for $2 at $1" >&2
      return 1
    fi
    sleep 0.05
  done
}
