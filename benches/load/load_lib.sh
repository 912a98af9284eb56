# Shell helpers of the load scripts (tick_health.sh, replication_bandwidth.sh); source it.
# `threads` reads the process `$spid`; `wait_for_quiet` the variable MAX_LOAD.

# The server's threads: name and CPU time (user + system, clock ticks).
threads() { for t in "/proc/$spid"/task/*; do echo "$(cat "$t/comm") $(awk '{print $14+$15}' "$t/stat")"; done; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until the 1-minute load average is below MAX_LOAD (other builds share this machine),
# then prints `uptime`.
wait_for_quiet() {
  while awk -v max="$MAX_LOAD" '{ exit !($1 >= max) }' /proc/loadavg; do sleep 5; done
  uptime
}
