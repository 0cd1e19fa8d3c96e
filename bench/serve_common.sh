# serve_common.sh - sourced by bench/serve_bench.sh and bench/serve_scaling.sh:
# the 110M-shape model (as bench/compare.sh makes it), and starting and
# stopping a server on a free loopback port.
SM=${SMALLMIND:-./build/smallmind}
WORK=${WORK:-/tmp/smallmind-bench}
SHARED=${SHARED:-../shared}
mkdir -p "$WORK"

# The LLaMA 110M shape (dim 768, 12 layers, 12 heads, ffn 2048, ctx 1024,
# vocabulary 32000) in Q8_0, made once in $WORK.
model_110m_q8() {
    local base="$WORK/llama110m-F32.gguf" f="$WORK/llama110m-Q8_0.gguf" vocab="--vocab 32000"
    [ -e "$SHARED/vocab/ggml-vocab-llama-spm.gguf" ] && vocab="--vocab-from $SHARED/vocab/ggml-vocab-llama-spm.gguf"
    [ -e "$base" ] || "$SM" init "$base" --arch llama --dim 768 --layers 12 --heads 12 --ffn 2048 --ctx 1024 $vocab \
        --seed 1 > /dev/null 2>&1
    [ -e "$f" ] || "$SM" quantize "$base" "$f" Q8_0 > /dev/null 2>&1
    echo "$f"
}

# free_port: a TCP port nothing listens on now.
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# wait_ready URL: until /health answers 200 (60 s at most).
wait_ready() {
    for _ in $(seq 600); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/health")" = 200 ] && return 0
        sleep 0.1
    done
    echo "the server at $1 did not become ready" >&2
    return 1
}

# stop_server PID
stop_server() { kill -TERM "$1" 2> /dev/null; wait "$1" 2> /dev/null || true; }

# json_field JSON KEY
json_field() { node -e 'console.log(JSON.parse(process.argv[1])[process.argv[2]])' "$1" "$2"; }
