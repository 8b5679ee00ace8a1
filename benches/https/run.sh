#!/usr/bin/env bash
# The HTTPS row of BENCHMARKS.md: squall's hello against hyper-hello (tokio
# current-thread + tokio-rustls), both on rustls's ring provider, both serving the same
# certificate. Not yet part of `cargo xtask bench`; run from the repository's top:
#
#   cargo build --release -p squall --example hello
#   (cd benches/peers && cargo build --release --bin hyper-hello)
#   bash benches/https/run.sh [ROUNDS=3]
#
# Per server and round: keep-alive 1 and 64 (wrk, 1 thread, pinned to CPU 1; 1 s
# warm-up, 5 s counted; the server pinned to CPU 0), server CPU µs per request from
# /proc/PID/stat (utime+stime) over the counted run; then the RSS that 1,000 idle TLS
# keep-alive connections (each after one request, Python's ssl client) add, per
# connection. Needs wrk (built with OpenSSL, as Debian's is), curl, openssl, python3.
# SQUALL_HELLO and HYPER_HELLO name other binaries (a build from another commit, for a
# side-by-side run).
set -euo pipefail
rounds=${1:-3}
# shellcheck source=benches/https/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cat > "$dir/idle.py" <<'PY'
import socket, ssl, sys
port, ca, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
conns = []
for _ in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    got = b""
    while not got.endswith(b"Hello, world!"):
        got += s.recv(4096)
    conns.append(s)
print("ready", flush=True)
sys.stdin.read()
PY
hz=$(getconf CLK_TCK)

row() { # NAME PORT -- COMMAND...
    local name=$1 port=$2
    shift 3
    taskset -c 0 "$@" >"$dir/$name.log" 2>&1 &
    local pid=$!
    wait_up "$port" 200 0.05
    ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }
    for conns in 1 64; do
        taskset -c 1 wrk -t1 -c$conns -d1s "https://127.0.0.1:$port/" >/dev/null
        local t0 out t1 reqs
        t0=$(ticks)
        out=$(taskset -c 1 wrk -t1 -c$conns -d5s "https://127.0.0.1:$port/")
        t1=$(ticks)
        reqs=$(awk '/requests in/{print $1}' <<<"$out")
        echo "$name keep-alive $conns: $(awk '/Requests\/sec/{print $2}' <<<"$out") req/s," \
            "server CPU $(python3 -c "print(round(($t1-$t0)/$hz*1e6/$reqs, 2))") us/req" \
            "$(grep -E 'Socket errors|Non-2xx' <<<"$out" | tr '\n' ' ')"
    done
    local r0 r1
    r0=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
    coproc PY { python3 "$dir/idle.py" "$port" "$dir/cert.pem" 1000; }
    read -r _ <&"${PY[0]}"
    r1=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
    echo "$name idle TLS connection: $(python3 -c "print(round(($r1-$r0)/1000, 2))") KiB"
    kill "$PY_PID" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

for r in $(seq "$rounds"); do
    echo "round $r (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
    row squall 18443 -- "${SQUALL_HELLO:-$top/target/release/examples/hello}" --port 18443 --threads 1 --quiet \
        --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem"
    row hyper 18444 -- "${HYPER_HELLO:-$top/benches/peers/target/release/hyper-hello}" --runtime current \
        --port 18444 --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem"
done
