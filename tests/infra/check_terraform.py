#!/usr/bin/env python3
"""Structural checks of terraform/ that checkov does not make, or not the way this project needs.

  python tests/infra/check_terraform.py        # from anywhere; needs python-hcl2 8.x

1. Buckets: every aws_s3_bucket has SSE-KMS default encryption (the one exception: a bucket that
   receives S3 server access logs, where AWS supports only SSE-S3), a public access block with all
   four settings true, and a bucket policy that denies aws:SecureTransport = false.
2. IAM: no Allow statement names an action with "*" in it; "*" as a resource only for the actions
   in RESOURCE_STAR_ACTIONS below (and in KMS key policies, where "*" means the key itself); every
   policy is written so that this script can read it.
3. Workflow: every function, cluster, task definition and topic that jobs/compact.asl.json names is
   a resource of terraform/modules/etl; the roles the workflow runs with are roles of the iam module;
   the state machine role may do what the workflow's integrations need; the names the environment
   gives the etl and iam modules agree.
4. Every variable has a description and a type; every module pins the aws provider with "~>" in
   versions.tf and lists each of its inputs and outputs in its README.md.

Exits 1 on any failure, listing all of them.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tfmodel import REPO, Module, blocks, is_expression, load_all, report  # noqa: E402

ASL = REPO / "jobs" / "compact.asl.json"

# Actions that may have "*" as their resource, and why. Anything else must name its resources.
RESOURCE_STAR_ACTIONS = {
    # X-Ray trace submission and sampling have no resource-level permissions.
    "xray:PutTraceSegments": None,
    "xray:PutTelemetryRecords": None,
    "xray:GetSamplingRules": None,
    "xray:GetSamplingTargets": None,
    # Step Functions logging goes through the CloudWatch Logs vended-log delivery APIs, which have
    # no resource-level permissions (Step Functions developer guide, logging to CloudWatch Logs).
    "logs:CreateLogDelivery": None,
    "logs:DeleteLogDelivery": None,
    "logs:DescribeLogGroups": None,
    "logs:DescribeResourcePolicies": None,
    "logs:GetLogDelivery": None,
    "logs:ListLogDeliveries": None,
    "logs:PutResourcePolicy": None,
    "logs:UpdateLogDelivery": None,
    # The ECR login token is account-wide.
    "ecr:GetAuthorizationToken": None,
    # Athena list operations return names only and have no resource-level permissions.
    "athena:ListDataCatalogs": None,
    "athena:ListEngineVersions": None,
    "athena:ListWorkGroups": None,
    # Custom metrics have no resource-level permissions; allowed only when a namespace condition
    # scopes them.
    "cloudwatch:PutMetricData": "cloudwatch:namespace",
}

# Resource types that carry IAM policy documents, and the attributes that hold them.
POLICY_ATTRIBUTES = {
    "aws_iam_role": ["assume_role_policy"],
    "aws_iam_role_policy": ["policy"],
    "aws_iam_policy": ["policy"],
    "aws_iam_user_policy": ["policy"],
    "aws_iam_group_policy": ["policy"],
    "aws_s3_bucket_policy": ["policy"],
    "aws_sns_topic_policy": ["policy"],
    "aws_sqs_queue_policy": ["policy"],
    "aws_kms_key": ["policy"],
    "aws_vpc_endpoint": ["policy"],
    "aws_ecr_repository_policy": ["policy"],
    "aws_cloudwatch_log_resource_policy": ["policy_document"],
}

# What the state machine role must be allowed, per integration the workflow uses.
INTEGRATION_ACTIONS = {
    "arn:aws:states:::lambda:invoke": {"lambda:InvokeFunction"},
    "arn:aws:states:::ecs:runTask.sync": {
        "ecs:RunTask",
        "ecs:DescribeTasks",
        "ecs:StopTask",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
        "iam:PassRole",
    },
    "arn:aws:states:::sns:publish": {"sns:Publish"},
}
# Logging level ALL and X-Ray tracing.
STATE_MACHINE_BASE_ACTIONS = {"logs:CreateLogDelivery", "xray:PutTraceSegments"}

# Which resource type a Task parameter of the workflow must point at.
ASL_PARAMETER_TYPES = {
    "FunctionName": "aws_lambda_function",
    "Cluster": "aws_ecs_cluster",
    "TaskDefinition": "aws_ecs_task_definition",
    "TopicArn": "aws_sns_topic",
}

failures: list[str] = []
counts: dict[str, int] = {}


def fail(where: str, msg: str) -> None:
    failures.append(f"{where}: {msg}")


def count(what: str, n: int = 1) -> None:
    counts[what] = counts.get(what, 0) + n


def as_list(x) -> list:
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def refers_to(expr, rtype: str, rname: str) -> bool:
    return isinstance(expr, str) and re.search(rf"(?<![\w.]){rtype}\.{re.escape(rname)}(?=[.\[])", expr) is not None


# --------------------------------------------------------------------------------------------
# 1. Buckets
# --------------------------------------------------------------------------------------------


def companions(m: Module, rtype: str, bucket: str, bucket_body: dict) -> list[tuple[str, dict]]:
    out = []
    for name, body in m.resources.get(rtype, {}).items():
        if refers_to(body.get("bucket"), "aws_s3_bucket", bucket):
            out.append((name, body))
    # A bucket created with for_each needs companions over the same set.
    fe = bucket_body.get("for_each")
    if fe is not None:
        out = [(n, b) for n, b in out if b.get("for_each") == fe]
    return out


def policy_doc_of(m: Module, expr) -> tuple[str, dict] | None:
    match = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)(\[[^\]]*\])?\.json\}", str(expr))
    if not match:
        return None
    name = match.group(1)
    body = m.data.get("aws_iam_policy_document", {}).get(name)
    return (name, body) if body is not None else None


def denies_insecure_transport(doc: dict, bucket: str) -> bool:
    for st in blocks(doc.get("statement")):
        if st.get("effect") != "Deny":
            continue
        principals = blocks(st.get("principals"))
        if not any(p.get("type") == "*" and "*" in as_list(p.get("identifiers")) for p in principals):
            continue
        conds = blocks(st.get("condition"))
        if not any(
            c.get("test") == "Bool" and c.get("variable") == "aws:SecureTransport" and as_list(c.get("values")) == ["false"]
            for c in conds
        ):
            continue
        resources = as_list(st.get("resources"))
        on_bucket = any(refers_to(r, "aws_s3_bucket", bucket) and not str(r).endswith("/*}") and "/*" not in str(r) for r in resources)
        on_objects = any(refers_to(r, "aws_s3_bucket", bucket) and "/*" in str(r) for r in resources)
        if on_bucket and on_objects and any(a in ("s3:*", "*") for a in as_list(st.get("actions"))):
            return True
    return False


def check_buckets(m: Module) -> None:
    log_targets = {
        rn
        for body in m.resources.get("aws_s3_bucket_logging", {}).values()
        for rn in m.resources.get("aws_s3_bucket", {})
        if refers_to(body.get("target_bucket"), "aws_s3_bucket", rn)
    }
    for name, body in m.resources.get("aws_s3_bucket", {}).items():
        count("buckets")
        where = f"{m.name}: aws_s3_bucket.{name}"

        sse = companions(m, "aws_s3_bucket_server_side_encryption_configuration", name, body)
        if not sse:
            fail(where, "no aws_s3_bucket_server_side_encryption_configuration (over the same for_each)")
        # S3 server access logs can only be delivered to a bucket whose default encryption is
        # SSE-S3 (S3 user guide, "Enabling Amazon S3 server access logging"): the one exception.
        wanted = "AES256" if name in log_targets else "aws:kms"
        for sse_name, sse_body in sse:
            defaults = [d for r in blocks(sse_body.get("rule")) for d in blocks(r.get("apply_server_side_encryption_by_default"))]
            algos = {d.get("sse_algorithm") for d in defaults}
            if algos != {wanted}:
                fail(where, f"default encryption is {sorted(algos)}, expected {wanted}" + (" (server access log target)" if wanted == "AES256" else ""))
            if wanted == "aws:kms" and not all(d.get("kms_master_key_id") for d in defaults):
                fail(where, "SSE-KMS without kms_master_key_id (would use the AWS managed key)")

        pabs = companions(m, "aws_s3_bucket_public_access_block", name, body)
        if not pabs:
            fail(where, "no aws_s3_bucket_public_access_block (over the same for_each)")
        for _, pab in pabs:
            for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
                if pab.get(flag) is not True:
                    fail(where, f"public access block: {flag} is not true")

        policies = companions(m, "aws_s3_bucket_policy", name, body)
        if not policies:
            fail(where, "no aws_s3_bucket_policy (over the same for_each)")
        for pname, pbody in policies:
            doc = policy_doc_of(m, pbody.get("policy"))
            if doc is None:
                fail(where, f"aws_s3_bucket_policy.{pname}: policy is not an aws_iam_policy_document of this module")
            elif not denies_insecure_transport(doc[1], name):
                fail(where, f"policy {doc[0]} has no Deny of s3:* on the bucket and its objects for aws:SecureTransport = false")


# --------------------------------------------------------------------------------------------
# 2. IAM statements
# --------------------------------------------------------------------------------------------


def check_statement(where: str, effect: str, actions: list, not_actions: list, resources: list, not_resources: list, conditions: list[tuple[str, str]], key_policy: bool) -> None:
    count("policy statements")
    if effect != "Allow":
        return  # a Deny with wildcards only takes away
    if not_actions:
        fail(where, "Allow with NotAction/not_actions")
    if not_resources:
        fail(where, "Allow with NotResource/not_resources")
    for a in actions:
        if "*" in str(a):
            fail(where, f"Allow of wildcard action {a!r}")
    if "*" in [str(r) for r in resources] and not key_policy:
        for a in actions:
            if a not in RESOURCE_STAR_ACTIONS:
                fail(where, f"{a} on resource \"*\": name the resources, or add the action with its reason to RESOURCE_STAR_ACTIONS")
            else:
                needed = RESOURCE_STAR_ACTIONS[a]
                if needed and not any(var == needed for _, var in conditions):
                    fail(where, f"{a} on resource \"*\" without a {needed} condition")


def check_policy_documents(m: Module) -> None:
    for dname, doc in m.data.get("aws_iam_policy_document", {}).items():
        count("policy documents")
        if "dynamic" in doc and any("statement" in d for d in blocks(doc.get("dynamic"))):
            fail(f"{m.name}: data.aws_iam_policy_document.{dname}", "dynamic statement blocks cannot be checked")
        for k in ("source_policy_documents", "override_policy_documents", "source_json", "override_json"):
            if k in doc:
                fail(f"{m.name}: data.aws_iam_policy_document.{dname}", f"{k} cannot be checked")
        for i, st in enumerate(blocks(doc.get("statement"))):
            where = f"{m.name}: data.aws_iam_policy_document.{dname} statement {st.get('sid', i)}"
            conds = [(c.get("test"), c.get("variable")) for c in blocks(st.get("condition"))]
            check_statement(
                where,
                st.get("effect", "Allow"),
                as_list(st.get("actions")),
                as_list(st.get("not_actions")),
                as_list(st.get("resources")),
                as_list(st.get("not_resources")),
                conds,
                key_policy=False,
            )


def local_refs(expr) -> list[str]:
    return re.findall(r"(?<![\w.])local\.([A-Za-z0-9_]+)", json.dumps(expr))


def resolve_statements(m: Module, obj, seen: set[str]) -> list[dict]:
    """Statements of a JSON-style policy object written in HCL (locals)."""
    out = []
    for st in as_list(obj.get("Statement")) if isinstance(obj, dict) else []:
        if isinstance(st, dict):
            out.append(st)
        elif is_expression(st):
            for ref in local_refs(st):
                if ref not in seen:
                    seen.add(ref)
                    v = m.locals.get(ref)
                    if isinstance(v, dict) and "Effect" in v:
                        out.append(v)
                    elif isinstance(v, list):
                        out.extend(x for x in v if isinstance(x, dict))
    return out


def resolve_local(m: Module, v):
    """`${local.x}` -> the value of local x (repeatedly); anything else as it is."""
    for _ in range(10):
        lm = re.fullmatch(r"\$\{local\.([A-Za-z0-9_]+)\}", v) if isinstance(v, str) else None
        if not lm or lm.group(1) not in m.locals:
            return v
        v = m.locals[lm.group(1)]
    return v


def statement_list(m: Module, where: str, st: dict, key: str) -> list:
    v = resolve_local(m, st.get(key))
    items = [resolve_local(m, x) for x in as_list(v)]
    if key in ("Action", "NotAction"):
        for x in items:
            if not isinstance(x, str) or is_expression(x):
                fail(where, f"{key} {x!r} is not a literal action list this check can read")
    return items


def check_inline_policies(m: Module) -> None:
    key_policy_locals: set[str] = set()
    for kname, key in m.resources.get("aws_kms_key", {}).items():
        key_policy_locals.update(local_refs(key.get("policy", "")))

    for lname, v in m.locals.items():
        if isinstance(v, dict) and "Statement" in v:
            key_policy = lname in key_policy_locals
            for st in resolve_statements(m, v, set()):
                where = f"{m.name}: local.{lname} statement {st.get('Sid', '?')}"
                cond = resolve_local(m, st.get("Condition")) or {}
                conds = [(test, var) for test, kv in cond.items() for var in (kv or {})] if isinstance(cond, dict) else []
                check_statement(
                    where,
                    resolve_local(m, st.get("Effect", "Allow")),
                    statement_list(m, where, st, "Action"),
                    statement_list(m, where, st, "NotAction"),
                    statement_list(m, where, st, "Resource"),
                    statement_list(m, where, st, "NotResource"),
                    conds,
                    key_policy=key_policy,
                )

    # Every policy attribute must be in a form the checks above read.
    for rtype, attrs in POLICY_ATTRIBUTES.items():
        for rname, body in m.resources.get(rtype, {}).items():
            for attr in attrs:
                if attr not in body:
                    continue
                expr = body[attr]
                where = f"{m.name}: {rtype}.{rname}.{attr}"
                if policy_doc_of(m, expr) is not None:
                    continue
                lm = re.fullmatch(r"\$\{jsonencode\(local\.([A-Za-z0-9_]+)\)\}", str(expr))
                if lm and isinstance(m.locals.get(lm.group(1)), dict):
                    continue
                fail(where, "policy is neither data.aws_iam_policy_document.<name>.json nor jsonencode(local.<object>), so it cannot be checked")


# --------------------------------------------------------------------------------------------
# 3. The workflow and the resources it names
# --------------------------------------------------------------------------------------------


def asl_tasks(states: dict):
    for name, st in states.items():
        if st.get("Type") == "Task":
            yield name, st
        if st.get("Type") == "Map":
            proc = st.get("ItemProcessor") or st.get("Iterator") or {}
            yield from asl_tasks(proc.get("States", {}))
        if st.get("Type") == "Parallel":
            for br in st.get("Branches", []):
                yield from asl_tasks(br.get("States", {}))


def module_source(env: Module, call: dict, all_modules: dict[Path, Module]) -> Module | None:
    src = call.get("source", "")
    target = (env.path / src).resolve()
    return all_modules.get(target)


def role_resource_behind(env: Module, expr, all_modules: dict[Path, Module]) -> tuple[Module, str] | None:
    """module.<m>.<output> -> the aws_iam_role that output returns."""
    match = re.fullmatch(r"\$\{module\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)\}", str(expr))
    if not match:
        return None
    call = env.modules.get(match.group(1))
    target = module_source(env, call or {}, all_modules)
    if target is None:
        return None
    out = target.outputs.get(match.group(2), {})
    roles = [n for t, n in target.resource_refs(str(out.get("value", ""))) if t == "aws_iam_role"]
    if len(roles) != 1 or not target.has_resource("aws_iam_role", roles[0]):
        return None
    return target, roles[0]


def allowed_actions_of_role(iam: Module, role: str) -> set[str]:
    actions: set[str] = set()
    for body in iam.resources.get("aws_iam_role_policy", {}).values():
        if not refers_to(body.get("role"), "aws_iam_role", role):
            continue
        doc = policy_doc_of(iam, body.get("policy"))
        if doc is None:
            continue
        for st in blocks(doc[1].get("statement")):
            if st.get("effect", "Allow") == "Allow":
                actions.update(as_list(st.get("actions")))
    return actions


def check_workflow(all_modules: dict[Path, Module]) -> None:
    etl = all_modules.get(REPO / "terraform" / "modules" / "etl")
    if etl is None:
        fail("terraform/modules/etl", "module not found")
        return
    try:
        asl = json.loads(ASL.read_text())
    except (OSError, ValueError) as e:
        fail(str(ASL.relative_to(REPO)), f"cannot read: {e}")
        return
    asl_vars = etl.locals.get("asl_vars", {})
    integrations: set[str] = set()

    for sname, st in asl_tasks(asl.get("States", {})):
        integrations.add(st.get("Resource", ""))
        params = st.get("Parameters", {})
        for key, rtype in ASL_PARAMETER_TYPES.items():
            if key not in params:
                continue
            count("workflow resources")
            where = f"jobs/compact.asl.json: state {sname}: {key}"
            placeholders = re.findall(r"\$\{([A-Za-z0-9_]+)\}", str(params[key]))
            if len(placeholders) != 1 or params[key] != "${" + placeholders[0] + "}":
                fail(where, f"{params[key]!r} is not a single templatefile placeholder (no hard-coded ARNs)")
                continue
            expr = str(asl_vars.get(placeholders[0], ""))
            refs = [n for t, n in etl.resource_refs(expr) if t == rtype]
            if not refs or not all(etl.has_resource(rtype, n) for n in refs):
                fail(where, f"${{{placeholders[0]}}} = {expr or 'nothing'}: not a {rtype} of terraform/modules/etl")

    # The state machine, its role and the roles of what it runs.
    machines = etl.resources.get("aws_sfn_state_machine", {})
    if len(machines) != 1:
        fail(etl.name, f"expected one aws_sfn_state_machine, found {len(machines)}")
        return
    (sm_name, sm), = machines.items()
    if "templatefile(" not in str(sm.get("definition", "")):
        fail(f"{etl.name}: aws_sfn_state_machine.{sm_name}", "definition is not rendered from the ASL template with templatefile")
    logging = blocks(sm.get("logging_configuration"))
    if not logging or logging[0].get("level") != "ALL":
        fail(f"{etl.name}: aws_sfn_state_machine.{sm_name}", "logging_configuration level ALL missing")
    tracing = blocks(sm.get("tracing_configuration"))
    if not tracing or tracing[0].get("enabled") is not True:
        fail(f"{etl.name}: aws_sfn_state_machine.{sm_name}", "X-Ray tracing not enabled")

    role_vars = {
        "state machine": str(sm.get("role_arn", "")),
        **{f"function {n}": str(b.get("role", "")) for n, b in etl.resources.get("aws_lambda_function", {}).items()},
        **{f"task definition {n} (task role)": str(b.get("task_role_arn", "")) for n, b in etl.resources.get("aws_ecs_task_definition", {}).items()},
        **{f"task definition {n} (execution role)": str(b.get("execution_role_arn", "")) for n, b in etl.resources.get("aws_ecs_task_definition", {}).items()},
    }
    envs = [m for m in all_modules.values() if any(module_source(m, c, all_modules) is etl for c in m.modules.values())]
    if not envs:
        fail(etl.name, "no environment calls the etl module")
    for env in envs:
        calls = {n: c for n, c in env.modules.items()}
        etl_call = next(c for c in calls.values() if module_source(env, c, all_modules) is etl)
        for what, var_expr in role_vars.items():
            vm = re.fullmatch(r"\$\{var\.([A-Za-z0-9_]+)\}", var_expr)
            if not vm:
                fail(f"{etl.name}: {what}", f"role {var_expr!r} is not a module input")
                continue
            count("workflow roles")
            resolved = role_resource_behind(env, etl_call.get(vm.group(1)), all_modules)
            if resolved is None:
                fail(f"{env.name}: module etl: {vm.group(1)}", f"{etl_call.get(vm.group(1))!r} is not an output of a module returning an aws_iam_role it defines")
                continue
            if what == "state machine":
                iam, role = resolved
                allowed = allowed_actions_of_role(iam, role)
                needed = set(STATE_MACHINE_BASE_ACTIONS)
                for integ in integrations:
                    if integ not in INTEGRATION_ACTIONS:
                        fail("jobs/compact.asl.json", f"integration {integ!r} unknown to this check: add what its role needs to INTEGRATION_ACTIONS")
                    needed |= INTEGRATION_ACTIONS.get(integ, set())
                for a in sorted(needed - allowed):
                    fail(f"{iam.name}: aws_iam_role.{role}", f"the workflow needs {a}, which the role's policies do not allow")

        # The iam module scopes every policy to names; they must be the names the etl module uses.
        iam_call = next((c for c in calls.values() if c.get("source", "").endswith("modules/iam")), None)
        if iam_call is None:
            fail(env.name, "calls the etl module but not the iam module")
            continue
        for etl_arg, iam_arg in [
            ("function_name", "etl_function_name"),
            ("ecs_cluster_name", "ecs_cluster_name"),
            ("ecs_task_family", "ecs_task_family"),
            ("ecr_repository_name", "ecr_repository_name"),
            ("state_machine_name", "state_machine_name"),
            ("alert_topic_name", "alert_topic_name"),
        ]:
            count("shared names")
            if etl_call.get(etl_arg) is None or etl_call.get(etl_arg) != iam_call.get(iam_arg):
                fail(f"{env.name}", f"module etl {etl_arg} = {etl_call.get(etl_arg)!r} but module iam {iam_arg} = {iam_call.get(iam_arg)!r}")


# --------------------------------------------------------------------------------------------
# 4. Variables, versions, READMEs
# --------------------------------------------------------------------------------------------


def check_module_hygiene(m: Module) -> None:
    count("modules")
    for vname, body in m.variables.items():
        count("variables")
        if not str(body.get("description", "")).strip():
            fail(f"{m.name}: variable {vname}", "no description")
        if "type" not in body:
            fail(f"{m.name}: variable {vname}", "no type")

    versions = m.path / "versions.tf"
    if not versions.exists():
        fail(m.name, "no versions.tf")
    else:
        pins = []
        for tf in m.terraform:
            for rp in blocks(tf.get("required_providers")):
                aws = rp.get("aws")
                if isinstance(aws, dict):
                    pins.append(str(aws.get("version", "")))
        if not pins:
            fail(f"{m.name}/versions.tf", "no required_providers.aws")
        elif not all(p.strip().startswith("~>") for p in pins):
            fail(f"{m.name}/versions.tf", f"aws provider pinned as {pins}, expected a ~> constraint")

    readme = m.path / "README.md"
    if not readme.exists():
        fail(m.name, "no README.md")
        return
    text = readme.read_text()
    for kind, names in (("input", m.variables), ("output", m.outputs)):
        for n in names:
            if not re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text):
                fail(f"{m.name}/README.md", f"does not mention {kind} {n}")
    # And the tables under "## Inputs" / "## Outputs" list nothing that is gone.
    for heading, names in (("Inputs", m.variables), ("Outputs", m.outputs)):
        section = re.search(rf"^## {heading}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
        if section is None:
            fail(f"{m.name}/README.md", f"no '## {heading}' section")
            continue
        for row in re.findall(r"^\|\s*`?([A-Za-z0-9_]+)`?\s*\|", section.group(1), re.M):
            if row not in ("Name",) and row not in names:
                fail(f"{m.name}/README.md", f"{heading} table lists {row}, which the module does not have")


def check_skips(all_modules: dict[Path, Module]) -> None:
    """checkov skips: only next to the resource, each with its reason; no global skip lists."""
    for m in all_modules.values():
        for f, text in m.text.items():
            for line_no, line in enumerate(text.splitlines(), 1):
                if "checkov:skip" not in line:
                    continue
                count("checkov skips")
                if not re.fullmatch(r"\s*#checkov:skip=CKV2?_[A-Z0-9]+_\d+:\S.{19,}", line):
                    fail(f"{f.relative_to(REPO)}:{line_no}", "a checkov skip needs the form #checkov:skip=CKV_...:<reason of at least 20 characters>")
    for name in (".checkov.yaml", ".checkov.yml"):
        for where in (REPO, REPO / "terraform"):
            if (where / name).exists():
                fail(str((where / name).relative_to(REPO)), "global checkov configuration: skips belong next to their resources")


def main() -> int:
    all_modules = load_all()
    if not all_modules:
        print("check_terraform: no .tf files found under terraform/", file=sys.stderr)
        return 1
    for m in all_modules.values():
        check_buckets(m)
        check_policy_documents(m)
        check_inline_policies(m)
        check_module_hygiene(m)
    check_workflow(all_modules)
    check_skips(all_modules)

    # Guard against checks that silently found nothing to look at.
    for what in ("buckets", "policy documents", "policy statements", "workflow resources", "workflow roles", "variables", "modules"):
        if counts.get(what, 0) == 0:
            failures.append(f"check_terraform: found no {what} to check")

    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    return report("check_terraform", failures, summary)


if __name__ == "__main__":
    sys.exit(main())
