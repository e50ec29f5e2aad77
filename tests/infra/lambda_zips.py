#!/usr/bin/env python3
"""Runs the built arm64 Lambda zips the way Lambda runs them, against the local stand-ins.

  python3 tests/infra/lambda_zips.py target/lambda/ingest/bootstrap.zip [target/lambda/etl/bootstrap.zip]

Each zip is unpacked into a scratch task root and its `bootstrap` is started with no arguments
(under qemu-aarch64 on another architecture), with `AWS_LAMBDA_RUNTIME_API` pointing at a
stand-in of Lambda's runtime API served here on 127.0.0.1. Invocations are handed out one at a
time and their answers checked:

- ingest: API Gateway (HTTP API) events: `GET /healthz`, a request without a token (401), a
  batch of two events (202), the same batch again with its `Idempotency-Key` (the same answer),
  a malformed body (400). The events land in the S3 stand-in (`EVENTLAKE_TEST_S3_LAKE`).
- etl (if given): the job's payloads on that lake: `plan` finds the partition the ingest run
  wrote, `compact` commits its two rows, a second `compact` leaves it unchanged, and
  `check_p95` runs the saved queries packaged in the zip.

Needs the S3 stand-in's environment (tests/standins/seaweedfs.sh start). Exits 1 with what
differed.
"""

import http.server
import json
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile

PREFIX = "/2018-06-01/runtime"
ANSWER_TIMEOUT = 180  # seconds for one invocation, emulation included


class RuntimeApi(http.server.ThreadingHTTPServer):
    """Lambda's runtime API, one invocation at a time."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.pending = queue.Queue()
        self.answers = queue.Queue()

    def handle_error(self, request, client_address):
        # The function is killed while it waits for its next invocation: a reset connection
        # then is the end of the run, not a failure.
        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            super().handle_error(request, client_address)

    def invoke(self, event, timeout=ANSWER_TIMEOUT):
        request_id = str(uuid.uuid4())
        self.pending.put((request_id, event))
        try:
            got_id, kind, body = self.answers.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer within {timeout} s to {json.dumps(event)[:200]}") from None
        assert got_id == request_id, f"answer for {got_id}, expected {request_id}"
        if kind != "response":
            raise AssertionError(f"the function reported an error: {body}")
        return json.loads(body)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"{}", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != f"{PREFIX}/invocation/next":
            return self.reply(404)
        while True:
            try:
                request_id, event = self.server.pending.get(timeout=1)
                break
            except queue.Empty:
                continue
        deadline = int((time.time() + ANSWER_TIMEOUT) * 1000)
        self.reply(
            200,
            json.dumps(event).encode(),
            [
                ("Lambda-Runtime-Aws-Request-Id", request_id),
                ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:eventlake-test"),
                ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0"),
            ],
        )

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0)).decode()
        parts = self.path[len(PREFIX):].strip("/").split("/")
        if parts[:2] == ["init", "error"]:
            self.server.answers.put((None, "init error", body))
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            self.server.answers.put((parts[1], parts[2], body))
        else:
            return self.reply(404)
        self.reply(202)


class Function:
    """A zip unpacked and its bootstrap started against a fresh runtime API."""

    def __init__(self, zip_path, env):
        self.root = tempfile.mkdtemp(prefix="lambda-task-")
        with zipfile.ZipFile(zip_path) as z:
            for info in z.infolist():
                z.extract(info, self.root)
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    os.chmod(os.path.join(self.root, info.filename), mode)
        self.api = RuntimeApi()
        threading.Thread(target=self.api.serve_forever, daemon=True).start()
        full_env = dict(os.environ)
        full_env.update(env)
        full_env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.api.server_address[1]}",
                "LAMBDA_TASK_ROOT": self.root,
                "AWS_LAMBDA_FUNCTION_NAME": "eventlake-test",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
                "_HANDLER": "bootstrap",
            }
        )
        self.log = open(os.path.join(self.root, "function.log"), "w+")
        self.proc = subprocess.Popen(
            emulator() + [os.path.join(self.root, "bootstrap")],
            cwd=self.root,
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def invoke(self, event):
        if self.proc.poll() is not None:
            raise AssertionError(f"bootstrap exited with {self.proc.returncode}:\n{self.output()}")
        return self.api.invoke(event)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.api.shutdown()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def emulator():
    if platform.machine() in ("aarch64", "arm64"):
        return []
    qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    if not qemu:
        raise SystemExit("error: the zips hold arm64 binaries and no qemu-aarch64 is installed to run them here")
    return [qemu]


def http_event(method, path, headers=None, body=None):
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "api.example.test", "user-agent": "lambda-zips-test", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "eventlake",
            "domainName": "api.example.test",
            "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "lambda-zips-test"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "body": body,
        "isBase64Encoded": False,
    }


def expect(what, cond, detail):
    if not cond:
        raise AssertionError(f"{what}: {detail}")
    print(f"  ok: {what}")


def run_ingest(zip_path, lake, scratch):
    tokens = os.path.join(scratch, "tokens.json")
    create = subprocess.run(
        emulator() + [unpacked_bootstrap(zip_path, scratch), "--tokens", tokens, "token", "create", "--team", "checkout"],
        capture_output=True,
        text=True,
        timeout=ANSWER_TIMEOUT,
    )
    expect("ingest token create", create.returncode == 0, create.stderr)
    token = create.stdout.strip()
    f = Function(zip_path, {"EVENTLAKE_LAKE": lake, "EVENTLAKE_TOKENS_FILE": tokens, "INGEST_LOG": "info"})
    try:
        r = f.invoke(http_event("GET", "/healthz"))
        expect("GET /healthz answers 200", r.get("statusCode") == 200, r)
        r = f.invoke(http_event("POST", "/v1/events", {"content-type": "application/json"}, '{"events":[]}'))
        expect("a request without a token answers 401", r.get("statusCode") == 401, r)
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        events = [
            {"event_id": f"zip-{i}-{uuid.uuid4()}", "event_type": "page_view", "event_time": now, "user_id": f"u-{i}"}
            for i in range(2)
        ]
        headers = {
            "authorization": f"Bearer {token}",
            "content-type": "application/json",
            "idempotency-key": f"zip-{uuid.uuid4()}",
        }
        first = f.invoke(http_event("POST", "/v1/events", headers, json.dumps({"events": events})))
        body = json.loads(first.get("body") or "{}")
        expect(
            "a batch of two events answers 202, both accepted, durable in the raw zone",
            first.get("statusCode") == 202 and body.get("accepted") == 2 and body.get("durable_in") == "raw",
            first,
        )
        again = f.invoke(http_event("POST", "/v1/events", headers, json.dumps({"events": events})))
        expect(
            "the same batch with its Idempotency-Key gets the same answer",
            again.get("statusCode") == 202 and json.loads(again.get("body") or "{}").get("batch_id") == body["batch_id"],
            again,
        )
        bad = f.invoke(http_event("POST", "/v1/events", {**headers, "idempotency-key": "zip-bad"}, '{"events": ['))
        expect("a malformed body answers 400", bad.get("statusCode") == 400, bad)
        expect("the token does not appear in the function's log", token not in f.output(), "token leaked")
    except AssertionError:
        print(f.output(), file=sys.stderr)
        raise
    finally:
        f.stop()
    return now[:10]


def run_etl(zip_path, lake, dt):
    f = Function(zip_path, {"EVENTLAKE_LAKE": lake, "EVENTLAKE_LOG_FORMAT": "json"})
    try:
        plan = f.invoke({"action": "plan", "scope": "range", "from": dt, "to": dt, "teams": ["checkout"]})
        parts = [p for p in plan.get("partitions", []) if p.get("team") == "checkout" and p.get("dt") == dt]
        expect("plan finds the partition the ingest function wrote", len(parts) == 1, plan)
        done = f.invoke({"action": "compact", "team": "checkout", "dt": dt})
        expect("compact commits the two rows", done.get("status") == "committed" and done.get("rows") == 2, done)
        again = f.invoke({"action": "compact", "team": "checkout", "dt": dt})
        expect("a second compact leaves the partition unchanged", again.get("status") == "unchanged", again)
        p95 = f.invoke({"action": "check_p95", "engine": "local", "runs": 1})
        expect("check_p95 runs the saved queries packaged in the zip", len(p95.get("queries", [])) > 0, p95)
    except AssertionError:
        print(f.output(), file=sys.stderr)
        raise
    finally:
        f.stop()


def unpacked_bootstrap(zip_path, scratch):
    out = os.path.join(scratch, "cli")
    with zipfile.ZipFile(zip_path) as z:
        z.extract("bootstrap", out)
    path = os.path.join(out, "bootstrap")
    os.chmod(path, 0o755)
    return path


def main():
    zips = sys.argv[1:]
    if not zips or not all(os.path.isfile(z) for z in zips):
        raise SystemExit(__doc__)
    base = os.environ.get("EVENTLAKE_TEST_S3_LAKE")
    if not base or not os.environ.get("AWS_ENDPOINT_URL_S3"):
        raise SystemExit("error: start the S3 stand-in first (tests/standins/seaweedfs.sh start) and set EVENTLAKE_TEST_S3_LAKE")
    lake = f"{base.rstrip('/')}/lambda-zips-{uuid.uuid4().hex[:8]}"
    scratch = tempfile.mkdtemp(prefix="lambda-zips-")
    try:
        dt = None
        for z in zips:
            kind = os.path.basename(os.path.dirname(os.path.abspath(z)))
            print(f"{z}:")
            if kind == "ingest":
                dt = run_ingest(z, lake, scratch)
            elif kind == "etl":
                if dt is None:
                    raise SystemExit("error: give the ingest zip before the etl zip (the etl run compacts what ingest landed)")
                run_etl(z, lake, dt)
            else:
                raise SystemExit(f"error: {z}: no invocations defined for {kind!r} (ingest, etl)")
    except AssertionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("lambda zips: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
