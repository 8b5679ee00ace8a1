#!/usr/bin/env bash
# User-space instructions per HTTPS request of squall's hello and of hyper-hello (the
# servers of run.sh), counted by valgrind's callgrind over a window of a running wrk:
# the connections are open before the counters are zeroed and still open when they are
# dumped, so no handshake is in the count, only keep-alive requests. The requests are
# the TLS records the server decrypted (wrk sends each request in one record); the
# records it encrypted are shown beside them (one per response is the goal). Build as
# for run.sh, then from the repository's top:
#
#   bash benches/https/instructions.sh [CONNECTIONS=64] [SECONDS=8] [TOP=0]
#
# TOP > 0 also lists each server's TOP functions by own instructions per request.
# SQUALL_HELLO and HYPER_HELLO name other binaries (another commit's build). Needs
# valgrind (callgrind_control, callgrind_annotate), wrk, curl, openssl, python3.
set -euo pipefail
conns=${1:-64}
secs=${2:-8}
top_n=${3:-0}
# shellcheck source=benches/https/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# calls.py PROFILE PATTERN...: the profile's total, then the calls made to functions
# whose name contains each PATTERN.
cat > "$dir/calls.py" <<'PY'
import re, sys
path, pats = sys.argv[1], sys.argv[2:]
names, cfn, total, calls = {}, "", 0, [0] * len(pats)
def name(s):
    m = re.match(r"\((\d+)\)(?: (.*))?", s)
    if not m:
        return s
    if m.group(2) is not None:
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), "")
for line in open(path):
    if line.startswith("cfn="):
        cfn = name(line[4:].strip())
    elif line.startswith("fn="):
        name(line[3:].strip())
    elif line.startswith("calls="):
        n = int(line[6:].split()[0])
        for i, p in enumerate(pats):
            if p in cfn:
                calls[i] += n
    elif line.startswith(("summary:", "totals:")):
        total = int(line.split()[1])
print(total, *calls)
PY
# top.py REQUESTS N < callgrind_annotate's output: the N functions with the most own
# instructions per request (the thread's and the runtime's entry frames left out: the
# zeroed counters give them the whole window as their own).
cat > "$dir/top.py" <<'PY'
import collections, re, sys
n, top = int(sys.argv[1]), int(sys.argv[2])
lines = sys.stdin.read().split("\n")
start = next(i for i, l in enumerate(lines) if "file:function" in l) + 2
own, total = collections.Counter(), 0
for l in lines[start:]:
    if l.startswith("---"):
        break
    m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.*?)(?: \[[^\]]*\])?$", l)
    if not m or "PROGRAM TOTALS" in m.group(2):
        continue
    c = int(m.group(1).replace(",", ""))
    total = max(total, c)
    own[m.group(2).split(":", 1)[-1]] += c
for f, c in own.most_common():
    if c < 0.9 * total and top > 0:
        print("  %7.0f  %s" % (c / n, f[:150]))
        top -= 1
PY

count() { # NAME PORT -- COMMAND...
    local name=$1 port=$2
    shift 3
    local out="$dir/callgrind.out.$name"
    # SIGTERM ends it: a background job of a script ignores SIGINT.
    taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out" "$@" \
        >"$dir/$name.log" 2>&1 &
    local pid=$!
    wait_up "$port" 600 0.1
    taskset -c 1 wrk -t1 -c"$conns" -d$((secs + 6))s --timeout 30s \
        "https://127.0.0.1:$port/" >/dev/null &
    local load=$!
    sleep 3
    callgrind_control --zero "$pid" >/dev/null 2>&1
    sleep "$secs"
    callgrind_control --dump "$pid" >/dev/null 2>&1
    wait "$load"
    kill -TERM "$pid"
    wait "$pid" || true
    local window
    window=$(ls "$out".* | head -1)
    local total records_in records_out
    read -r total records_in records_out < <(python3 "$dir/calls.py" "$window" \
        MessageDecrypter MessageEncrypter)
    python3 -c "print('$name, keep-alive $conns: %d requests, %d instructions, %.0f per request, %.3f records out per request' % ($records_in, $total, $total / $records_in, $records_out / $records_in))"
    if [ "$top_n" -gt 0 ]; then
        callgrind_annotate --inclusive=no --auto=no --threshold=100 "$window" 2>/dev/null |
            python3 "$dir/top.py" "$records_in" "$top_n"
    fi
}

count squall 18453 -- "${SQUALL_HELLO:-$top/target/release/examples/hello}" --port 18453 \
    --threads 1 --quiet --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem"
count hyper 18454 -- "${HYPER_HELLO:-$top/benches/peers/target/release/hyper-hello}" \
    --runtime current --port 18454 --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem"
