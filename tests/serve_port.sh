# serve_port.sh - sourced by the shell tests that start `smallmind serve --port 0`:
#   serve_port ERRFILE   waits (up to 10 s) until the server whose stderr goes to
#                        ERRFILE says where it listens and answers /health, then
#                        prints its port (nothing if it never did)
serve_port() {
    local port="" i
    for i in $(seq 1 100); do
        port=$(sed -n 's|.*listening on http://[^ ]*:\([0-9]*\)/.*|\1|p' "$1" | head -1)
        [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" > /dev/null 2>&1 && break
        sleep 0.1
    done
    echo "$port"
}
