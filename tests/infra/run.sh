#!/usr/bin/env bash
# Checks the AWS side (terraform/ and jobs/) without an AWS account:
#
#   1. checkov over terraform/ (offline): zero failed checks; a skip only as a
#      `#checkov:skip=CKV_...:<reason>` comment on the resource
#   2. tests/infra/check_terraform.py: buckets, IAM statements, the resources and roles the
#      workflow names, variables, provider pins, module READMEs
#   3. tests/infra/check_asl.py: the Step Functions definitions in jobs/ and their templatefile
#      variables; tests/infra/bus_policies.py: the bus's generated IAM policies evaluated per team
#      (team B's role reads B's queue and topic and nothing of C's); analyst_policies.py: the
#      analyst roles' policies the same way (B's analysts read B's curated partitions, results
#      and workgroup, and nothing of C's, nor raw data or quarantine)
#   4. tests/infra/sfn_branches.py: the compaction workflow's branches on moto's Step Functions
#      engine (success, retry of a Retryable error, a NonRetryable failure that alerts, a
#      breached P95 budget, the Fargate route)
#
#   tests/infra/run.sh            # from anywhere; exits non-zero on the first failing step
#
# The Python tools live in virtual environments under target/venvs/infra/, created on first use
# and reused while their pinned requirements stay the same:
#   checkov/  checkov, whose pinned dependencies stay away from everything else
#   tools/    python-hcl2 and boto3 for the scripts here (checkov ships its own fork of the hcl2
#             module under the same import name, so the two cannot share an environment)
#   moto/     moto[server] for step 4
#
# Step 4 needs a moto server whose Step Functions engine sends its service calls to the Lambda
# stand-in in sfn_branches.py (see that file for why): moto is started with MOTO_PORT set to the
# stand-in's port. tests/standins/moto.sh starts moto with MOTO_PORT equal to its own port (and
# the suite's moto may be running), so this script starts its own instance on other ports
# (EVENTLAKE_INFRA_MOTO_PORT, default 5010; EVENTLAKE_SFN_STANDIN_PORT, default 5011) and stops it
# by PID on exit. A caller that has already started moto that way sets both AWS_ENDPOINT_URL and
# EVENTLAKE_SFN_STANDIN_PORT, and that moto is used instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/standins/lib.sh

venvs=target/venvs/infra
state=target/standins/moto-infra

CHECKOV='checkov==3.3.30'
TOOLS=('python-hcl2==8.1.4' 'boto3==1.44.8')
MOTO='moto[server]==5.2.5'

# ensure_venv <name> <requirement>...: creates or updates target/venvs/infra/<name>.
ensure_venv() {
  local dir=$venvs/$1
  shift
  if [ ! -x "$dir/bin/python" ]; then
    echo "infra: creating $dir" >&2
    python3 -m venv "$dir"
  fi
  if [ "$(cat "$dir/.requirements" 2>/dev/null || true)" != "$*" ]; then
    echo "infra: installing $* into $dir" >&2
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
    echo "$*" >"$dir/.requirements"
  fi
}

cleanup() {
  if [ -n "${started_moto:-}" ]; then stop_pidfile "$state/pid"; fi
}
trap cleanup EXIT

ensure_venv checkov "$CHECKOV"
ensure_venv tools "${TOOLS[@]}"
ensure_venv moto "$MOTO"

# 1. checkov. Its exit code covers failed checks; the summary is also read so that a run that
# parsed nothing cannot pass.
echo "== checkov"
out=$("$venvs/checkov/bin/checkov" -d terraform --skip-download --framework terraform --compact --quiet 2>&1) || {
  echo "$out"
  echo "infra: checkov reported failed checks" >&2
  exit 1
}
echo "$out" | grep -E 'Passed checks|Failed checks|Skipped checks' || true
if ! echo "$out" | grep -qE 'Passed checks: [1-9][0-9]*, Failed checks: 0,'; then
  echo "$out"
  echo "infra: checkov did not report passed checks and zero failures" >&2
  exit 1
fi

# 2 and 3. Structural checks.
echo "== check_terraform"
"$venvs/tools/bin/python" -B tests/infra/check_terraform.py
echo "== check_asl"
"$venvs/tools/bin/python" -B tests/infra/check_asl.py
echo "== bus_policies"
"$venvs/tools/bin/python" -B tests/infra/bus_policies.py
echo "== analyst_policies"
"$venvs/tools/bin/python" -B tests/infra/analyst_policies.py
echo "== check_environments"
"$venvs/tools/bin/python" -B tests/infra/check_environments.py

# 4. The workflow's branches on moto.
echo "== sfn_branches"
if [ -n "${AWS_ENDPOINT_URL:-}" ] && [ -n "${EVENTLAKE_SFN_STANDIN_PORT:-}" ]; then
  echo "infra: using moto at $AWS_ENDPOINT_URL (Lambda stand-in on port $EVENTLAKE_SFN_STANDIN_PORT)" >&2
else
  port=${EVENTLAKE_INFRA_MOTO_PORT:-5010}
  export EVENTLAKE_SFN_STANDIN_PORT=${EVENTLAKE_SFN_STANDIN_PORT:-5011}
  mkdir -p "$state"
  if running "$state/pid"; then
    echo "infra: a moto from an earlier run is still up (pid $(cat "$state/pid")); stopping it" >&2
    stop_pidfile "$state/pid"
  fi
  for p in "$port" "$EVENTLAKE_SFN_STANDIN_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "infra: port $p is in use; set EVENTLAKE_INFRA_MOTO_PORT / EVENTLAKE_SFN_STANDIN_PORT to free ports" >&2
      exit 1
    fi
  done
  MOTO_PORT=$EVENTLAKE_SFN_STANDIN_PORT nohup "$venvs/moto/bin/moto_server" -H 127.0.0.1 -p "$port" \
    >"$state/log" 2>&1 &
  echo $! >"$state/pid"
  started_moto=1
  export AWS_ENDPOINT_URL=http://127.0.0.1:$port
  ready=
  for _ in $(seq 1 100); do
    if curl -fsS -X POST "$AWS_ENDPOINT_URL/moto-api/reset" >/dev/null 2>&1; then
      ready=1
      break
    fi
    sleep 0.1
  done
  if [ -z "$ready" ]; then
    echo "infra: moto did not answer in 10 s; see $state/log" >&2
    exit 1
  fi
fi
"$venvs/tools/bin/python" -B tests/infra/sfn_branches.py

echo "infra: ok"
