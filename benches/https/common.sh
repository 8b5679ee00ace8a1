# Shared by run.sh and instructions.sh (sourced, not run): the repository's top as
# `top`, a scratch folder as `dir` (removed on exit, with any server still running), a
# throwaway P-256 certificate for localhost in it (cert.pem, key.pem), and a wait for
# a server to answer.
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost 2>/dev/null

# wait_up PORT TRIES PAUSE: until the server on PORT answers over HTTPS, at most TRIES
# times PAUSE seconds.
wait_up() {
    for _ in $(seq "$2"); do
        curl -sk "https://127.0.0.1:$1/" >/dev/null 2>&1 && return 0
        sleep "$3"
    done
}
