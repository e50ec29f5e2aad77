#!/usr/bin/env python3
"""Runs jobs/compact.asl.json on moto's Step Functions engine, through its branches.

  AWS_ENDPOINT_URL=http://127.0.0.1:5010 EVENTLAKE_SFN_STANDIN_PORT=5011 python tests/infra/sfn_branches.py

For each branch, moto is reset and the state machine is created from the template, with every
placeholder replaced by the ARN or id of a resource this script creates there (a Lambda
function, an ECS cluster and task definition, subnets and a security group, an SNS topic with an
SQS queue subscribed to it, so that alerts can be read back). The branch then runs one execution
with the nightly schedule's input (the retryable branch with the frequent one's) and checks its
outcome and history:

  success      three partitions compact on Lambda, the P95 check is ok, no alert, the execution
               SUCCEEDS
  retryable    one compaction fails once with error `Retryable`, is retried and succeeds; no
               alert, the execution SUCCEEDS (a frequent run: the P95 check is skipped)
  permanent    one compaction fails with `NonRetryable`: not retried, recorded by the Catch, the
               other partitions still compact, the P95 check still runs, the alert arrives on
               the queue, the execution FAILS with PartitionsFailed
  breach       the P95 check returns ok = false: the alert names the query, the execution
               SUCCEEDS (BudgetBreached)
  fargate      a partition the plan gives to Fargate reaches the ecs:runTask.sync task with the
               cluster, task definition, the network the plan gave its team and the command
               `task --payload <json>` of the contract (checked in the TaskScheduled event).
               moto's engine cannot run that integration: it hands the ASL's parameter names
               (Cluster, TaskDefinition, ...) to boto3's ECS client unchanged, whose names are
               camelCase, and the task fails with States.Runtime "'Cluster'" before any request
               is sent. The branch accepts that failure only with exactly that cause, and then
               checks that the Catch recorded it like any other failed partition.

  at-scale     a large plan: the plan writes its 30 partitions to S3 (moto's) and the workflow
               fans out with the Distributed Map, which reads them with its ItemReader; the map
               run has the configured concurrency and tolerated failure count, two partitions
               fail, SummariseMapRun asks the job (`etl task`, against moto) for the run's counts,
               and the alert counts 2 failed of 30. moto enforces neither the concurrency nor the
               tolerated failure count and writes an empty result manifest, so the alert's list
               of failed partitions stays empty here; on AWS the FAILED result files fill it.
  remote-at-scale  `etl backfill --remote` of that plan: progress from the map run's counts,
               exit code 1.

Why a Lambda stand-in: moto's Step Functions engine really executes the states (Choice, Map,
Retry with backoff and jitter, Catch, intrinsic functions) and calls each integration over HTTP,
at http://localhost:$MOTO_PORT, the port moto was started with. Its own Lambda backend cannot fail
an invocation: with use_docker false it echoes the payload or returns a queued canned response
(POST /moto-api/static/lambda-simple/response), always as a success, never with the
X-Amz-Function-Error header; with use_docker true it needs a Docker engine. So moto is started
with MOTO_PORT set to EVENTLAKE_SFN_STANDIN_PORT, where this script listens: it answers the
Lambda Invoke calls (POST /2015-03-31/functions/<name>/invocations) the way Lambda does,
including function errors (200, X-Amz-Function-Error: Unhandled, {"errorType": "Retryable", ...}),
from the job's contract, and passes every other request (ECS, SNS, ...) on to moto unchanged.
The engine then maps a function error to the error name errorType, as Step Functions does.

If moto was not started that way, the engine's calls never reach the stand-in and this script
fails saying so. Needs boto3; nothing else beyond the standard library.
"""

from __future__ import annotations

import http.client
import http.server
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
ASL = REPO / "jobs" / "compact.asl.json"
REGION = "eu-west-1"
FUNCTION = "eventlake-test-etl"
CONTAINER = "etl"
EXECUTION_DEADLINE_S = 90
DAY = "2026-11-25"
LAKE_BUCKET = "eventlake-test-lake"
PLAN_PREFIX = "_workflow/plans"
MAP_RUN_MAX_CONCURRENCY = 3
MAP_RUN_TOLERATED_FAILURES = 5

failures: list[str] = []


def check(cond: bool, branch: str, msg: str) -> bool:
    if not cond:
        failures.append(f"{branch}: {msg}")
        print(f"  FAIL {msg}", file=sys.stderr)
    return cond


# --------------------------------------------------------------------------------------------
# The Lambda stand-in: the job's task contract, scripted per branch
# --------------------------------------------------------------------------------------------


@dataclass
class Script:
    """What the job's entry point answers during one execution."""

    function_arn: str
    partitions: list[dict]
    # (team, dt) -> outcomes of successive compact calls: "ok" or an error type
    compact: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    p95_ok: bool = True
    calls: list[dict] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    # A large plan: the partitions go to this moto S3 client's LAKE_BUCKET, as the plan writes them.
    large_plan_s3: object | None = None
    etl: str | None = None
    moto_endpoint: str = ""
    other_requests: list[tuple[str, str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, function: str, payload: dict) -> tuple[bool, dict]:
        """Returns (function_error, body)."""
        with self.lock:
            self.calls.append(payload)
            action = payload.get("action")
            if action == "plan":
                day = set(payload) == {"action", "scope"} and payload["scope"] in ("today", "yesterday")
                ranged = payload.get("scope") == "range" and set(payload) in (
                    {"action", "scope", "from", "to"},
                    {"action", "scope", "from", "to", "teams"},
                )
                if not (day or ranged):
                    return self._bad(payload)
                if self.large_plan_s3 is not None:
                    key = f"{PLAN_PREFIX}/{uuid.uuid4().hex}.json"
                    self.large_plan_s3.put_object(Bucket=LAKE_BUCKET, Key=key, Body=json.dumps(self.partitions).encode())
                    items = {"bucket": LAKE_BUCKET, "key": key, "url": f"s3://{LAKE_BUCKET}/{key}"}
                    return False, {"partitions": [], "count": len(self.partitions), "items": items}
                return False, {"partitions": self.partitions, "count": len(self.partitions), "items": None}
            if action == "map_run":
                if set(payload) != {"action", "map_run_arn", "results"}:
                    return self._bad(payload)
                return self._map_run(payload)
            if action == "compact":
                if set(payload) != {"action", "team", "dt"}:
                    return self._bad(payload)
                key = (payload["team"], payload["dt"])
                outcomes = self.compact.get(key, [])
                attempt = sum(1 for c in self.calls if c.get("action") == "compact" and (c.get("team"), c.get("dt")) == key)
                outcome = outcomes[attempt - 1] if attempt <= len(outcomes) else "ok"
                if outcome == "busy":
                    # Another run holds the partition's lease (crates/etl/src/task.rs).
                    return False, {"partition": f"team={key[0]}/dt={key[1]}", "status": "busy",
                                   "held_by": "pid 7 on another host", "held_until": "2026-11-20T02:00:00.000Z",
                                   "rows": None, "quarantined": None}
                if outcome != "ok":
                    return True, {
                        "errorType": outcome,
                        "errorMessage": f"compaction of team={key[0]}/dt={key[1]} failed ({outcome}, attempt {attempt})",
                    }
                return False, {"partition": f"team={key[0]}/dt={key[1]}", "status": "committed", "rows": 1000, "quarantined": 2}
            if action == "check_p95":
                if payload != {"action": "check_p95", "engine": "athena", "runs": 3}:
                    return self._bad(payload)
                queries = [
                    {"name": "events_by_type", "p95_ms": 900, "budget_ms": 5000},
                    {"name": "daily_funnel", "p95_ms": 2100 if self.p95_ok else 9100, "budget_ms": 4000},
                ]
                over = [q["name"] for q in queries if q["p95_ms"] > q["budget_ms"]]
                return False, {"ok": not over, "over_budget": over, "queries": queries}
            return self._bad(payload)

    def _map_run(self, payload: dict) -> tuple[bool, dict]:
        """The job's own answer: `etl task --payload` against moto (DescribeMapRun, and the result
        manifest in moto's S3)."""
        if not self.etl:
            self.violations.append("a map_run call, but EVENTLAKE_ETL_BIN is unset: the job's summary of a map run cannot be checked")
            return True, {"errorType": "NonRetryable", "errorMessage": "no etl binary"}
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")} | {
            "AWS_ENDPOINT_URL": self.moto_endpoint,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "EVENTLAKE_LAKE": f"s3://{LAKE_BUCKET}",
            "EVENTLAKE_CATALOG": "lake",
            "ETL_LOG": "warn",
        }
        proc = subprocess.run([self.etl, "task", "--payload", json.dumps(payload)], env=env,
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            self.violations.append(f"etl task map_run exited {proc.returncode}: {proc.stdout} {proc.stderr}")
            return True, {"errorType": "NonRetryable", "errorMessage": proc.stderr[-500:]}
        return False, json.loads(proc.stdout)

    def _bad(self, payload: dict) -> tuple[bool, dict]:
        self.violations.append(f"payload outside the task contract: {json.dumps(payload, sort_keys=True)}")
        return True, {"errorType": "NonRetryable", "errorMessage": "bad input"}


class StandIn(http.server.ThreadingHTTPServer):
    daemon_threads = True
    script: Script | None = None
    moto: urllib.parse.SplitResult


class Handler(http.server.BaseHTTPRequestHandler):
    server: StandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        body = self._body()
        m = re.fullmatch(r"/2015-03-31/functions/([^/]+)/invocations", urllib.parse.urlsplit(self.path).path)
        script = self.server.script
        if self.command == "POST" and m and script is not None:
            function = urllib.parse.unquote(m.group(1))
            if function != script.function_arn:
                self._send(404, {"Content-Type": "application/json", "x-amzn-ErrorType": "ResourceNotFoundException"},
                           json.dumps({"Type": "User", "Message": f"Function not found: {function}"}).encode())
                return
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                payload = {"unparsable": body.decode(errors="replace")}
            errored, out = script.invoke(function, payload)
            headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
            if errored:
                headers["X-Amz-Function-Error"] = "Unhandled"
            self._send(200, headers, json.dumps(out).encode())
            return
        if script is not None:
            with script.lock:
                script.other_requests.append((self.command, self.headers.get("X-Amz-Target", self.path), body))
        # Everything else goes to moto as it came.
        conn = http.client.HTTPConnection(self.server.moto.hostname, self.server.moto.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive", "transfer-encoding")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out_headers = {k: v for k, v in resp.getheaders() if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length")}
        conn.close()
        self._send(resp.status, out_headers, data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


# --------------------------------------------------------------------------------------------
# moto resources
# --------------------------------------------------------------------------------------------


class Moto:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint.rstrip("/")
        kw = dict(
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=60),
        )
        self.sfn = boto3.client("stepfunctions", **kw)
        self.iam = boto3.client("iam", **kw)
        self.lam = boto3.client("lambda", **kw)
        self.sns = boto3.client("sns", **kw)
        self.sqs = boto3.client("sqs", **kw)
        self.ecs = boto3.client("ecs", **kw)
        self.ec2 = boto3.client("ec2", **kw)
        self.s3 = boto3.client("s3", **kw)

    def api(self, path: str, body: dict | None = None) -> None:
        data = json.dumps(body or {}).encode()
        req = urllib.request.Request(self.endpoint + path, data=data, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def reset(self) -> None:
        self.api("/moto-api/reset")
        self.api("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
        # ECS tasks stop as soon as they are described, so ecs:runTask.sync completes.
        self.api("/moto-api/state-manager/set-transition", {"model_name": "ecs::task", "transition": {"progression": "immediate"}})

    def setup(self) -> dict[str, str]:
        """Creates what the template names; returns the templatefile variables."""
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com", "ecs-tasks.amazonaws.com"]}, "Action": "sts:AssumeRole"}]})
        role = self.iam.create_role(RoleName="eventlake-test", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("bootstrap", "#!/bin/sh\n")
        fn = self.lam.create_function(
            FunctionName=FUNCTION, Runtime="provided.al2023", Role=role, Handler="bootstrap",
            Code={"ZipFile": buf.getvalue()}, Architectures=["arm64"],
        )["FunctionArn"]

        vpc = self.ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            self.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i * 16}.0/20", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
            for i, az in enumerate("ab")
        ]
        sg = self.ec2.create_security_group(GroupName="etl-task", Description="etl tasks", VpcId=vpc)["GroupId"]
        cluster = self.ecs.create_cluster(clusterName="eventlake-test-etl")["cluster"]["clusterArn"]
        taskdef = self.ecs.register_task_definition(
            family="eventlake-test-etl", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
            cpu="2048", memory="8192", taskRoleArn=role, executionRoleArn=role,
            containerDefinitions=[{"name": CONTAINER, "image": "etl:test", "essential": True}],
        )["taskDefinition"]["taskDefinitionArn"]

        topic = self.sns.create_topic(Name="eventlake-test-alerts")["TopicArn"]
        self.queue_url = self.sqs.create_queue(QueueName="eventlake-test-alerts")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        self.role = role
        self.s3.create_bucket(Bucket=LAKE_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        return {
            "etl_function_arn": fn,
            "ecs_cluster_arn": cluster,
            "ecs_task_definition_arn": taskdef,
            "ecs_container_name": CONTAINER,
            "ecs_assign_public_ip": "ENABLED",
            "alert_topic_arn": topic,
            "map_max_concurrency": "2",
            "map_run_max_concurrency": str(MAP_RUN_MAX_CONCURRENCY),
            "map_run_tolerated_failures": str(MAP_RUN_TOLERATED_FAILURES),
            "map_results_bucket": LAKE_BUCKET,
            "map_results_prefix": "_workflow/map-runs",
            # Not a template variable: the plan gives a Fargate partition its team's network.
            "_network": {"subnets": subnets, "security_groups": [sg]},
        }

    def create_state_machine(self, variables: dict[str, str]) -> str:
        text = ASL.read_text()
        names = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text))
        missing = names - set(variables)
        if missing:
            raise SystemExit(f"the template uses placeholders this script does not provide: {sorted(missing)}")
        rendered = re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: variables[m.group(1)], text).replace("$${", "${")
        json.loads(rendered)
        return self.sfn.create_state_machine(name=f"compact-{uuid.uuid4().hex[:8]}", definition=rendered, roleArn=self.role)["stateMachineArn"]

    def run(self, machine: str, payload: dict) -> tuple[dict, list[dict]]:
        arn = self.sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps(payload))["executionArn"]
        deadline = time.monotonic() + EXECUTION_DEADLINE_S
        while True:
            desc = self.sfn.describe_execution(executionArn=arn)
            if desc["status"] != "RUNNING" or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        events, token = [], None
        for _ in range(100):
            page = self.sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                break
        return desc, events

    def alerts(self, wait_s: float) -> list[dict]:
        """SNS notifications that reached the queue within wait_s seconds."""
        out, deadline = [], time.monotonic() + wait_s
        while time.monotonic() < deadline:
            resp = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for msg in resp.get("Messages", []):
                envelope = json.loads(msg["Body"])
                out.append({"subject": envelope.get("Subject"), "message": json.loads(envelope["Message"])})
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=msg["ReceiptHandle"])
            if out:
                break
        return out


# --------------------------------------------------------------------------------------------
# History helpers
# --------------------------------------------------------------------------------------------


def task_events(events: list[dict], kind: str) -> list[dict]:
    key = {"TaskFailed": "taskFailedEventDetails", "TaskScheduled": "taskScheduledEventDetails", "TaskSucceeded": "taskSucceededEventDetails"}[kind]
    return [e.get(key, {}) | {"id": e["id"]} for e in events if e["type"] == kind]


def entered(events: list[dict], state: str) -> int:
    return sum(1 for e in events if e["type"].endswith("StateEntered") and e.get("stateEnteredEventDetails", {}).get("name") == state)


def lambda_payloads(events: list[dict], action: str) -> list[dict]:
    out = []
    for d in task_events(events, "TaskScheduled"):
        if d.get("resourceType") == "lambda":
            params = json.loads(d.get("parameters", "{}"))
            payload = params.get("Payload", {})
            if isinstance(payload, str):
                payload = json.loads(payload)
            if payload.get("action") == action:
                out.append(payload)
    return out


def partition(team: str, runner: str = "lambda", dt: str = DAY) -> dict:
    return {"team": team, "dt": dt, "raw_bytes": 123_456, "runner": runner}


# --------------------------------------------------------------------------------------------
# Branches
# --------------------------------------------------------------------------------------------


NIGHTLY = {"run": "nightly", "scope": "yesterday", "check_p95": True}
FREQUENT = {"run": "frequent", "scope": "today", "check_p95": False}
RANGE_DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]
BACKFILL = {"run": "backfill", "scope": "range", "from": RANGE_DAYS[0], "to": RANGE_DAYS[-1], "teams": ["acme", "globex"], "check_p95": False}
BACKFILL_ALL = {"run": "backfill", "scope": "range", "from": RANGE_DAYS[0], "to": RANGE_DAYS[-1], "check_p95": False}


def run_branch(name: str, moto: Moto, standin: StandIn, script_for, expect, run_input: dict = NIGHTLY) -> None:
    print(f"branch {name}")
    moto.reset()
    variables = moto.setup()
    machine = moto.create_state_machine(variables)
    script = script_for(variables)
    standin.script = script
    try:
        desc, events = moto.run(machine, run_input | {"scheduled_time": f"{DAY}T01:30:00Z", "execution_id": name})
    finally:
        standin.script = None
    if not script.calls:
        check(False, name, "moto's Step Functions engine never called the Lambda stand-in: start moto with "
              "MOTO_PORT=<EVENTLAKE_SFN_STANDIN_PORT> (tests/infra/run.sh does), so that its integrations call this script")
        return
    for v in script.violations:
        check(False, name, v)
    check(desc["status"] != "RUNNING", name, f"still RUNNING after {EXECUTION_DEADLINE_S} s")
    try:
        expect(name, moto, script, desc, events, variables)
    except Exception as e:  # a malformed result is a failure of this branch, not of the script
        check(False, name, f"checking the outcome raised {e!r}")
    if not [f for f in failures if f.startswith(name + ":")]:
        print(f"  ok: {desc['status']}, {len(events)} history events, {len(script.calls)} Lambda invocations")


def expect_success(name, moto, script, desc, events, variables):
    check(desc["status"] == "SUCCEEDED", name, f"status {desc['status']} {desc.get('error', '')} {desc.get('cause', '')}")
    out = json.loads(desc.get("output") or "{}")
    results = out.get("results", [])
    check(len(results) == 3 and not any(r.get("failed") for r in results), name, f"results {results}")
    check(out.get("summary", {}).get("any_failed") is False, name, f"summary {out.get('summary')}")
    check(out.get("p95", {}).get("ok") is True, name, f"p95 {out.get('p95')}")
    check([c.get("action") for c in script.calls].count("plan") == 1 and script.calls[0] == {"action": "plan", "scope": "yesterday"}, name, f"plan calls {script.calls[:1]}")
    compacts = sorted((c.get("team"), c.get("dt")) for c in script.calls if c.get("action") == "compact")
    check(compacts == [("acme", DAY), ("globex", DAY), ("initech", DAY)], name, f"Lambda compactions {compacts}")
    payloads = lambda_payloads(events, "compact")
    check(len(payloads) == 3 and all(set(p) == {"action", "team", "dt"} for p in payloads), name, f"compact payloads in the history {payloads}")
    check([c.get("action") for c in script.calls].count("check_p95") == 1, name, "one P95 check")
    check(not task_events(events, "TaskFailed"), name, f"failed tasks {task_events(events, 'TaskFailed')}")
    check(entered(events, "Done") == 1, name, "did not end in Done")
    check(not moto.alerts(3), name, "an alert was published")


def expect_retry(name, moto, script, desc, events, variables):
    check(desc["status"] == "SUCCEEDED", name, f"status {desc['status']} {desc.get('error', '')} {desc.get('cause', '')}")
    acme = [c for c in script.calls if c.get("action") == "compact" and c.get("team") == "acme"]
    check(len(acme) == 2, name, f"acme compacted {len(acme)} times, expected 2 (one failure, one retry)")
    failed = task_events(events, "TaskFailed")
    check(len(failed) == 1 and failed[0].get("error") == "Retryable", name, f"TaskFailed events {failed}")
    if failed:
        later = [e for e in events if e["id"] > failed[0]["id"] and e["type"] == "TaskScheduled"]
        check(any(json.loads(e["taskScheduledEventDetails"]["parameters"]).get("Payload", {}).get("team") == "acme" for e in later),
              name, "no TaskScheduled for acme after the failure (no retry in the history)")
    check(len(lambda_payloads(events, "compact")) == 3, name, f"{len(lambda_payloads(events, 'compact'))} compact invocations in the history, expected 3")
    # A frequent run: the plan is for today and the P95 check is skipped.
    check(script.calls and script.calls[0] == {"action": "plan", "scope": "today"}, name, f"plan call {script.calls[:1]}")
    check(not [c for c in script.calls if c.get("action") == "check_p95"] and entered(events, "P95Skipped") == 1, name, "the P95 check ran in a frequent run")
    check(entered(events, "PartitionFailed") == 0, name, "the Catch ran for a retryable error that succeeded on retry")
    out = json.loads(desc.get("output") or "{}")
    check(out.get("summary", {}).get("any_failed") is False, name, f"summary {out.get('summary')}")
    check(not moto.alerts(3), name, "an alert was published")


def expect_permanent(name, moto, script, desc, events, variables):
    check(desc["status"] == "FAILED", name, f"status {desc['status']}, expected FAILED")
    fail_events = [e for e in events if e["type"] == "ExecutionFailed"]
    err = fail_events[0].get("executionFailedEventDetails", {}).get("error") if fail_events else None
    check(err == "PartitionsFailed", name, f"execution error {err!r}, expected PartitionsFailed")
    acme = [c for c in script.calls if c.get("action") == "compact" and c.get("team") == "acme"]
    check(len(acme) == 1, name, f"acme compacted {len(acme)} times: NonRetryable must not be retried")
    failed = task_events(events, "TaskFailed")
    check([f.get("error") for f in failed] == ["NonRetryable"], name, f"TaskFailed events {failed}")
    check(entered(events, "PartitionFailed") == 1, name, "the Catch did not record the failure (PartitionFailed)")
    others = sorted(str(c.get("team")) for c in script.calls if c.get("action") == "compact" and c.get("team") != "acme")
    check(others == ["globex", "initech"], name, f"other partitions compacted: {others}")
    check([c.get("action") for c in script.calls].count("check_p95") == 1, name, "the P95 check did not run after the failure")
    alerts = moto.alerts(10)
    check(len(alerts) == 1, name, f"{len(alerts)} alert(s) on the queue, expected 1")
    if alerts:
        msg = alerts[0]["message"]
        check(msg.get("outcome") == "partitions_failed" and msg.get("failed_count") == 1 and msg.get("partitions") == 3, name, f"alert {msg}")
        check(msg.get("p95", {}).get("ok") is True, name, f"the alert lacks the P95 result: {msg.get('p95')}")
        f = (msg.get("failed") or [{}])[0]
        check(f.get("team") == "acme" and f.get("dt") == DAY and f.get("error", {}).get("Error") == "NonRetryable", name, f"failed partition in the alert {f}")
        check("NonRetryable" in f.get("error", {}).get("Cause", ""), name, "the alert does not carry the function's error")
        check(bool(alerts[0]["subject"]), name, "alert without a subject")


def expect_breach(name, moto, script, desc, events, variables):
    check(desc["status"] == "SUCCEEDED", name, f"status {desc['status']} {desc.get('error', '')}")
    check(entered(events, "BudgetBreached") == 1, name, "did not end in BudgetBreached")
    alerts = moto.alerts(10)
    check(len(alerts) == 1, name, f"{len(alerts)} alert(s), expected 1")
    if alerts:
        msg = alerts[0]["message"]
        check(msg.get("outcome") == "p95_budget_breached" and msg.get("over_budget") == ["daily_funnel"], name, f"alert {msg}")


MOTO_ECS_GAP = "'Cluster'"


def expect_fargate(name, moto, script, desc, events, variables):
    check(entered(events, "CompactOnFargate") == 1, name, "the fargate partition did not reach CompactOnFargate")
    check(entered(events, "CompactOnLambda") == 1, name, "the lambda partition did not reach CompactOnLambda")
    scheduled = [d for d in task_events(events, "TaskScheduled") if d.get("resourceType") == "ecs"]
    check(len(scheduled) == 1, name, f"{len(scheduled)} ECS TaskScheduled events, expected 1")
    if scheduled:
        check(scheduled[0].get("resource") == "runTask.sync", name, f"ECS resource {scheduled[0].get('resource')}")
        p = json.loads(scheduled[0].get("parameters", "{}"))
        check(p.get("Cluster") == variables["ecs_cluster_arn"] and p.get("TaskDefinition") == variables["ecs_task_definition_arn"]
              and p.get("LaunchType") == "FARGATE", name, f"RunTask parameters {p}")
        net = p.get("NetworkConfiguration", {}).get("AwsvpcConfiguration", {})
        team_net = variables["_network"]
        check(net == {"Subnets": team_net["subnets"], "SecurityGroups": team_net["security_groups"], "AssignPublicIp": "ENABLED"},
              name, f"network configuration {net}, expected the one the plan gave the partition's team: {team_net}")
        overrides = p.get("Overrides", {}).get("ContainerOverrides", [])
        command = overrides[0].get("Command") if overrides else None
        check(len(overrides) == 1 and overrides[0].get("Name") == CONTAINER, name, f"container overrides {overrides}")
        check(isinstance(command, list) and len(command) == 3 and command[:2] == ["task", "--payload"]
              and json.loads(command[2]) == {"action": "compact", "team": "initech", "dt": DAY}, name, f"command {command}")
    # The Lambda partition succeeds, so a failed task here is the ECS one (moto's TaskFailed event
    # for it carries no resourceType).
    ecs_failed = task_events(events, "TaskFailed")
    runs = [t for _, t, _ in script.other_requests if t.endswith(".RunTask")]
    if ecs_failed:
        # moto's gap (see the module docstring); anything else is a real failure.
        check(len(ecs_failed) == 1 and ecs_failed[0].get("error") == "States.Runtime" and ecs_failed[0].get("cause") == MOTO_ECS_GAP and not runs,
              name, f"the ECS task failed other than by moto's known gap: {ecs_failed[0]}")
        check(entered(events, "PartitionFailed") == 1 and desc["status"] == "FAILED", name, "the Catch did not record the failed Fargate partition")
        alerts = moto.alerts(10)
        check(len(alerts) == 1 and [f.get("team") for f in alerts[0]["message"].get("failed", [])] == ["initech"], name, f"alerts {alerts}")
        print("  note: moto cannot run ecs:runTask.sync; checked the routing, the RunTask parameters and the Catch")
    else:
        check(len(runs) == 1 and desc["status"] == "SUCCEEDED", name, f"{len(runs)} RunTask requests, status {desc['status']}")


def expect_range(teams):
    def check_range(name, moto, script, desc, events, variables):
        check(desc["status"] == "SUCCEEDED", name, f"status {desc['status']} {desc.get('error', '')} {desc.get('cause', '')}")
        want = {"action": "plan", "scope": "range", "from": RANGE_DAYS[0], "to": RANGE_DAYS[-1]}
        if teams is not None:
            want["teams"] = teams
        check(script.calls and script.calls[0] == want, name, f"plan call {script.calls[:1]}, expected {want}")
        compacts = sorted((c.get("team"), c.get("dt")) for c in script.calls if c.get("action") == "compact")
        planned = sorted((t, d) for t in ("acme", "globex") for d in RANGE_DAYS)
        check(compacts == planned, name, f"Lambda compactions {compacts}")
        out = json.loads(desc.get("output") or "{}")
        check(out.get("summary", {}).get("any_failed") is False, name, f"summary {out.get('summary')}")
        check(not moto.alerts(3), name, "an alert was published")
    return check_range


def expect_busy(name, moto, script, desc, events, variables):
    check(desc["status"] == "SUCCEEDED", name, f"status {desc['status']} {desc.get('error', '')} {desc.get('cause', '')}")
    out = json.loads(desc.get("output") or "{}")
    results = out.get("results", [])
    busy = [r for r in results if r.get("result", {}).get("status") == "busy"]
    check(len(results) == 2 and len(busy) == 1 and not any(r.get("failed") for r in results), name, f"results {results}")
    check(entered(events, "PartitionFailed") == 0, name, "a busy partition was recorded as failed")
    check(not moto.alerts(3), name, "an alert was published")


AT_SCALE_DAYS = [f"2026-10-{d:02d}" for d in range(1, 11)]
AT_SCALE = [partition(t, dt=d) for t in ("acme", "globex", "initech") for d in AT_SCALE_DAYS]
AT_SCALE_FAILING = {("globex", AT_SCALE_DAYS[3]): ["NonRetryable"], ("initech", AT_SCALE_DAYS[7]): ["NonRetryable"]}
BACKFILL_AT_SCALE = {"run": "backfill", "scope": "range", "from": AT_SCALE_DAYS[0], "to": AT_SCALE_DAYS[-1], "check_p95": False}


def large_script(variables: dict, moto: "Moto", compact: dict) -> Script:
    return Script(variables["etl_function_arn"], AT_SCALE, compact=compact, large_plan_s3=moto.s3,
                  etl=os.environ.get("EVENTLAKE_ETL_BIN"), moto_endpoint=moto.endpoint)


def map_run_of(moto: "Moto", events: list[dict]) -> dict | None:
    arns = [e.get("mapRunStartedEventDetails", {}).get("mapRunArn") for e in events if e["type"] == "MapRunStarted"]
    return moto.sfn.describe_map_run(mapRunArn=arns[0]) if len(arns) == 1 and arns[0] else None


def expect_at_scale(name, moto, script, desc, events, variables):
    """A large plan: the list in S3, a Distributed Map with its bounds, two partitions failing."""
    check(desc["status"] == "FAILED", name, f"status {desc['status']}, expected FAILED")
    fail_events = [e for e in events if e["type"] == "ExecutionFailed"]
    err = fail_events[0].get("executionFailedEventDetails", {}).get("error") if fail_events else None
    check(err == "PartitionsFailed", name, f"execution error {err!r}, expected PartitionsFailed")
    check(entered(events, "CompactPartitionsAtScale") == 1 and entered(events, "CompactPartitions") == 0, name,
          "a large plan did not go to the Distributed Map")
    run = map_run_of(moto, events)
    check(run is not None, name, "no map run in the history")
    if run:
        check(run["maxConcurrency"] == MAP_RUN_MAX_CONCURRENCY and run["toleratedFailureCount"] == MAP_RUN_TOLERATED_FAILURES,
              name, f"map run bounds {run['maxConcurrency']}, {run['toleratedFailureCount']}")
        counts = run["itemCounts"]
        check(counts["total"] == len(AT_SCALE) and counts["failed"] == 2 and counts["succeeded"] == len(AT_SCALE) - 2,
              name, f"map run item counts {counts}")
    compacts = sorted((c.get("team"), c.get("dt")) for c in script.calls if c.get("action") == "compact")
    check(compacts == sorted((p["team"], p["dt"]) for p in AT_SCALE), name, f"{len(compacts)} compactions, expected each planned partition once")
    reads = [t for m, t, _ in script.other_requests if m == "GET" and PLAN_PREFIX in t]
    check(len(reads) >= 1, name, "the Distributed Map did not read the plan's file from S3")
    summaries = [c for c in script.calls if c.get("action") == "map_run"]
    check(len(summaries) == 1 and run is not None and summaries[0].get("map_run_arn") == run["mapRunArn"]
          and summaries[0].get("results", {}).get("Bucket") == LAKE_BUCKET
          and summaries[0]["results"].get("Key", "").startswith("_workflow/map-runs/"), name, f"map_run calls {summaries}")
    alerts = moto.alerts(10)
    check(len(alerts) == 1, name, f"{len(alerts)} alert(s) on the queue, expected 1")
    if alerts:
        msg = alerts[0]["message"]
        check(msg.get("outcome") == "partitions_failed" and msg.get("failed_count") == 2 and msg.get("partitions") == len(AT_SCALE),
              name, f"alert {msg}")
        check(msg.get("map_run", {}).get("MapRunArn") == (run or {}).get("mapRunArn"), name, f"the alert does not name the map run: {msg.get('map_run')}")


def run_remote_at_scale(name: str, moto: Moto, standin: StandIn, etl: str) -> None:
    """`etl backfill --remote` of a large plan: progress from the map run's counts, exit 1."""
    print(f"branch {name}")
    moto.reset()
    variables = moto.setup()
    machine = moto.create_state_machine(variables)
    script = large_script(variables, moto, AT_SCALE_FAILING)
    standin.script = script
    env = os.environ | {
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "ETL_LOG": "warn",
    }
    args = [etl, "backfill", "--remote", "--state-machine", machine, "--from", AT_SCALE_DAYS[0],
            "--to", AT_SCALE_DAYS[-1], "--poll-seconds", "1"]
    try:
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=EXECUTION_DEADLINE_S + 60)
    finally:
        standin.script = None
    for v in script.violations:
        check(False, name, v)
    progress = [x for x in proc.stdout.splitlines() if x.startswith("[") and "partitions finished" in x]
    check(proc.returncode == 1, name, f"exit code {proc.returncode}, expected 1\n{proc.stdout}\n{proc.stderr}")
    check(bool(progress) and progress[-1].startswith(f"[{len(AT_SCALE)} of {len(AT_SCALE)}]") and " 2 failed" in progress[-1],
          name, f"progress lines {progress}\n{proc.stdout}\n{proc.stderr}")
    check(f"2 of {len(AT_SCALE)} partitions failed" in proc.stdout, name, f"verdict line missing:\n{proc.stdout}")
    check("child executions of" in proc.stderr, name, f"the command did not say the plan runs as a map run:\n{proc.stderr}")
    if not [f for f in failures if f.startswith(name + ":")]:
        print(f"  ok: exit {proc.returncode}, {len(progress)} progress lines, last: {progress[-1] if progress else ''}")


def run_remote(name: str, moto: Moto, standin: StandIn, etl: str, compact: dict, expect_code: int) -> None:
    """`etl backfill --remote` against moto's engine: it starts the execution, prints each
    partition as the workflow finishes it, and exits as a local backfill would."""
    print(f"branch {name}")
    moto.reset()
    variables = moto.setup()
    machine = moto.create_state_machine(variables)
    ranged = [partition(t, dt=d) for t in ("acme", "globex") for d in RANGE_DAYS]
    script = Script(variables["etl_function_arn"], ranged, compact=compact)
    standin.script = script
    env = os.environ | {
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "ETL_LOG": "warn",
    }
    args = [etl, "backfill", "--remote", "--state-machine", machine, "--from", RANGE_DAYS[0],
            "--to", RANGE_DAYS[-1], "--team", "acme", "--team", "globex", "--poll-seconds", "1"]
    try:
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=EXECUTION_DEADLINE_S + 60)
    finally:
        standin.script = None
    lines = [x for x in proc.stdout.splitlines() if x.startswith("[")]
    check(proc.returncode == expect_code, name, f"exit code {proc.returncode}, expected {expect_code}\n{proc.stdout}\n{proc.stderr}")
    check(script.calls and script.calls[0] == {k: v for k, v in BACKFILL.items() if k not in ("run", "check_p95")} | {"action": "plan"},
          name, f"plan call {script.calls[:1]}")
    check(len(lines) == len(ranged) and all(f" of {len(ranged)}]" in x for x in lines), name, f"progress lines {lines}")
    for t, d in compact:
        bad = [x for x in lines if f"team={t}/dt={d}" in x]
        check(len(bad) == 1 and " failed " in bad[0], name, f"the failed partition's line: {bad}")
    if not [f for f in failures if f.startswith(name + ":")]:
        print(f"  ok: exit {proc.returncode}, {len(lines)} partitions reported, {len(script.calls)} Lambda invocations")


def main() -> int:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    port = os.environ.get("EVENTLAKE_SFN_STANDIN_PORT")
    if not endpoint or not port:
        print("sfn_branches: set AWS_ENDPOINT_URL (moto) and EVENTLAKE_SFN_STANDIN_PORT (the MOTO_PORT moto was started with); "
              "tests/infra/run.sh does both", file=sys.stderr)
        return 1
    standin = StandIn(("127.0.0.1", int(port)), Handler)
    standin.moto = urllib.parse.urlsplit(endpoint)
    threading.Thread(target=standin.serve_forever, daemon=True).start()
    moto = Moto(endpoint)
    try:
        run_branch("success", moto, standin,
                   lambda v: Script(v["etl_function_arn"], [partition("acme"), partition("globex"), partition("initech")]),
                   expect_success)
        run_branch("retryable", moto, standin,
                   lambda v: Script(v["etl_function_arn"], [partition("acme"), partition("globex")], compact={("acme", DAY): ["Retryable"]}),
                   expect_retry, FREQUENT)
        run_branch("permanent", moto, standin,
                   lambda v: Script(v["etl_function_arn"], [partition("acme"), partition("globex"), partition("initech")], compact={("acme", DAY): ["NonRetryable"]}),
                   expect_permanent)
        run_branch("breach", moto, standin,
                   lambda v: Script(v["etl_function_arn"], [partition("acme")], p95_ok=False),
                   expect_breach)
        run_branch("fargate", moto, standin,
                   lambda v: Script(v["etl_function_arn"], [partition("acme"), partition("initech", "fargate") | {"network": v["_network"]}]),
                   expect_fargate)
        ranged = [partition(t, dt=d) for t in ("acme", "globex") for d in RANGE_DAYS]
        run_branch("range", moto, standin,
                   lambda v: Script(v["etl_function_arn"], ranged),
                   expect_range(["acme", "globex"]), BACKFILL)
        run_branch("range-all-teams", moto, standin,
                   lambda v: Script(v["etl_function_arn"], ranged),
                   expect_range(None), BACKFILL_ALL)
        run_branch("busy", moto, standin,
                   lambda v: Script(v["etl_function_arn"], [partition("acme"), partition("globex")], compact={("acme", DAY): ["busy"]}),
                   expect_busy, FREQUENT)
        etl = os.environ.get("EVENTLAKE_ETL_BIN")
        if etl:
            run_branch("at-scale", moto, standin, lambda v: large_script(v, moto, AT_SCALE_FAILING),
                       expect_at_scale, BACKFILL_AT_SCALE)
            run_remote("remote", moto, standin, etl, {}, 0)
            run_remote("remote-failed", moto, standin, etl, {("globex", RANGE_DAYS[1]): ["NonRetryable"]}, 1)
            run_remote_at_scale("remote-at-scale", moto, standin, etl)
        else:
            print("branches at-scale and remote: not run here (EVENTLAKE_ETL_BIN unset; tests/run.sh sets it to the built etl)")
    finally:
        standin.shutdown()
    if failures:
        print(f"sfn_branches: {len(failures)} failure(s)", file=sys.stderr)
        for f in failures:
            print(f"  - {f}", file=sys.stderr)
        return 1
    remote = ", at-scale, remote, remote-failed, remote-at-scale" if os.environ.get("EVENTLAKE_ETL_BIN") else ""
    print(f"sfn_branches: ok (success, retryable, permanent, breach, fargate, range, range-all-teams, busy{remote})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
