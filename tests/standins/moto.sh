#!/usr/bin/env bash
# Starts or stops the local stand-in for SQS, SSM, Glue and Step Functions (moto server) on
# 127.0.0.1 only.
#
#   tests/standins/moto.sh start   # installs moto[server] from PyPI if needed, waits until it answers
#   tests/standins/moto.sh stop    # stops the process this script started (by PID)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/standins/lib.sh
state=target/standins/moto
port=${MOTO_PORT:-5000}

case "${1:-}" in
start)
  if ! command -v moto_server >/dev/null; then
    python3 -m pip install --quiet 'moto[server]==5.2.5' >&2
  fi
  mkdir -p "$state"
  if running "$state/pid"; then
    echo "moto already running (pid $(cat "$state/pid"))" >&2
  else
    nohup moto_server -H 127.0.0.1 -p "$port" >"$state/log" 2>&1 &
    echo $! >"$state/pid"
  fi
  for i in $(seq 1 100); do
    if curl -fsS -X POST "http://127.0.0.1:$port/moto-api/reset" >/dev/null 2>&1; then
      echo "moto ready after $((i * 100)) ms" >&2
      echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$port"
      exit 0
    fi
    sleep 0.1
  done
  echo "moto did not answer in 10 s; see $state/log" >&2
  exit 1
  ;;
stop)
  stop_pidfile "$state/pid"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
