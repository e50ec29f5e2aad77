#!/usr/bin/env python3
"""Checks the Step Functions definitions in jobs/ against themselves, the job's task contract and
the Terraform that renders them.

  python tests/infra/check_asl.py        # from anywhere; needs python-hcl2 8.x

For every jobs/*.asl.json:
- it is valid JSON as it is (every templatefile placeholder sits inside a JSON string), with no
  `%{` template directives;
- StartAt and every Next, Default, Choices[].Next and Catch[].Next name a state of the same scope
  (top level, a Map's ItemProcessor/Iterator, a Parallel branch); every state has Next or End
  unless it is a Succeed, Fail or Choice; every state is reachable;
- Retry and Catch follow the job's contract: Lambda tasks retry only `Retryable` and the Lambda
  service errors, with full jitter; `NonRetryable` is never retried; a Catch keeps the state's
  input (a ResultPath below `$`);
- the Distributed Map of large plans (CompactPartitionsAtScale) runs the same iteration as the
  inline Map (CompactPartitions), state for state, except that its failed partitions end in a Fail
  state so that the map run counts them: a change to one processor must be made to the other;
- every placeholder `${name}` is a variable of the templatefile call in terraform/modules/etl,
  whose expression refers only to things that module declares, and that module passes no
  variable the template does not use.

Exits 1 on any failure, listing all of them.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tfmodel import REPO, load_module, report  # noqa: E402

JOBS = REPO / "jobs"
ETL_MODULE = REPO / "terraform" / "modules" / "etl"
ENVS = REPO / "terraform" / "envs"

TERMINAL_TYPES = {"Succeed", "Fail"}
# Errors the job's task entry point raises, and the Lambda service errors worth retrying.
RETRYABLE_LAMBDA_ERRORS = {
    "Retryable",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")

failures: list[str] = []


def fail(where: str, msg: str) -> None:
    failures.append(f"{where}: {msg}")


# --------------------------------------------------------------------------------------------
# The state graph
# --------------------------------------------------------------------------------------------


def check_scope(where: str, scope: dict) -> int:
    """Checks one StartAt/States scope and the scopes nested in it; returns the number of states."""
    states = scope.get("States")
    if not isinstance(states, dict) or not states:
        fail(where, "no States")
        return 0
    start = scope.get("StartAt")
    if start not in states:
        fail(where, f"StartAt {start!r} is not a state here")

    edges: dict[str, set[str]] = {name: set() for name in states}
    n = len(states)
    for name, st in states.items():
        here = f"{where} > {name}"
        stype = st.get("Type")
        targets: list[tuple[str, str]] = []
        if "Next" in st:
            targets.append(("Next", st["Next"]))
        if stype == "Choice":
            if "Next" in st or "End" in st:
                fail(here, "a Choice state has neither Next nor End")
            choices = st.get("Choices")
            if not choices:
                fail(here, "Choice without Choices")
            for i, rule in enumerate(choices or []):
                if "Next" not in rule:
                    fail(here, f"Choices[{i}] has no Next")
                else:
                    targets.append((f"Choices[{i}].Next", rule["Next"]))
            if "Default" in st:
                targets.append(("Default", st["Default"]))
        elif stype in TERMINAL_TYPES:
            if "Next" in st or "End" in st:
                fail(here, f"a {stype} state has neither Next nor End")
        else:
            has_next, has_end = "Next" in st, st.get("End") is True
            if has_next == has_end:
                fail(here, "needs exactly one of Next and End: true")
        for i, c in enumerate(st.get("Catch", [])):
            if "Next" not in c:
                fail(here, f"Catch[{i}] has no Next")
            else:
                targets.append((f"Catch[{i}].Next", c["Next"]))
        for label, target in targets:
            if target not in states:
                fail(here, f"{label} {target!r} is not a state of this scope")
            else:
                edges[name].add(target)

        if stype == "Map":
            proc = st.get("ItemProcessor") or st.get("Iterator")
            if proc is None:
                fail(here, "Map without ItemProcessor/Iterator")
            else:
                n += check_scope(f"{here} (ItemProcessor)", proc)
        if stype == "Parallel":
            for i, br in enumerate(st.get("Branches", [])):
                n += check_scope(f"{here} (Branches[{i}])", br)

    # Reachability from StartAt.
    seen, todo = set(), [start] if start in states else []
    while todo:
        s = todo.pop()
        if s in seen:
            continue
        seen.add(s)
        todo.extend(edges.get(s, ()))
    for name in states:
        if name not in seen:
            fail(f"{where} > {name}", "not reachable from StartAt")
    return n


# --------------------------------------------------------------------------------------------
# Retry and Catch against the job's contract
# --------------------------------------------------------------------------------------------


def all_states(scope: dict, where: str):
    for name, st in scope.get("States", {}).items():
        yield f"{where} > {name}", st
        proc = st.get("ItemProcessor") or st.get("Iterator")
        if proc:
            yield from all_states(proc, f"{where} > {name}")
        for i, br in enumerate(st.get("Branches", [])):
            yield from all_states(br, f"{where} > {name}[{i}]")


def check_error_handling(where: str, doc: dict) -> int:
    tasks = 0
    for here, st in all_states(doc, where):
        for i, r in enumerate(st.get("Retry", [])):
            errs = set(r.get("ErrorEquals", []))
            if "NonRetryable" in errs or "States.ALL" in errs:
                fail(here, f"Retry[{i}] retries {sorted(errs & {'NonRetryable', 'States.ALL'})}: errors the job marks non-retryable must not be retried")
            if r.get("JitterStrategy") != "FULL":
                fail(here, f"Retry[{i}] without JitterStrategy FULL")
            if r.get("BackoffRate", 2.0) <= 1:
                fail(here, f"Retry[{i}] without backoff (BackoffRate <= 1)")
        if st.get("Type") == "Task" and str(st.get("Resource", "")).startswith("arn:aws:states:::lambda:invoke"):
            tasks += 1
            retried = {e for r in st.get("Retry", []) for e in r.get("ErrorEquals", [])}
            if "Retryable" not in retried:
                fail(here, "a Lambda task of the job that does not retry Retryable")
            if retried - RETRYABLE_LAMBDA_ERRORS:
                fail(here, f"retries {sorted(retried - RETRYABLE_LAMBDA_ERRORS)}, outside the job's retryable errors")
            if not any("States.ALL" in c.get("ErrorEquals", []) for c in st.get("Catch", [])):
                fail(here, "a Lambda task of the job without a Catch of States.ALL")
        for i, c in enumerate(st.get("Catch", [])):
            rp = c.get("ResultPath", "$")
            if rp is None or rp == "$" or not str(rp).startswith("$."):
                fail(here, f"Catch[{i}] ResultPath {rp!r} does not keep the state's input")
    return tasks


# --------------------------------------------------------------------------------------------
# Placeholders against the templatefile call
# --------------------------------------------------------------------------------------------


def templatefile_vars() -> tuple[dict[str, str], str, object]:
    """The variables the etl module passes to templatefile, the expression, and the module."""
    m = load_module(ETL_MODULE)
    machines = m.resources.get("aws_sfn_state_machine", {})
    if len(machines) != 1:
        fail("terraform/modules/etl", f"expected one aws_sfn_state_machine, found {len(machines)}")
        return {}, "", m
    definition = str(next(iter(machines.values())).get("definition", ""))
    call = re.fullmatch(r"\$\{templatefile\((.+),\s*(.+)\)\}", definition)
    if not call:
        fail("terraform/modules/etl", f"definition {definition!r} is not templatefile(<path>, <vars>)")
        return {}, definition, m
    vars_expr = call.group(2).strip()
    local = re.fullmatch(r"local\.([A-Za-z0-9_]+)", vars_expr)
    if not local or not isinstance(m.locals.get(local.group(1)), dict):
        fail("terraform/modules/etl", f"templatefile variables {vars_expr!r} are not a local map this check can read")
        return {}, definition, m
    return {k: str(v) for k, v in m.locals[local.group(1)].items()}, call.group(1), m


def declared(m, expr: str) -> list[str]:
    """What in `expr` does not resolve to a declaration of module m."""
    missing = []
    for t, n in re.findall(r"(?<![\w.])(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)", expr):
        if n not in m.resources.get(t, {}):
            missing.append(f"{t}.{n}")
    for t, n in re.findall(r"(?<![\w.])data\.([a-z0-9_]+)\.([A-Za-z0-9_-]+)", expr):
        if n not in m.data.get(t, {}):
            missing.append(f"data.{t}.{n}")
    for v in re.findall(r"(?<![\w.])var\.([A-Za-z0-9_]+)", expr):
        if v not in m.variables:
            missing.append(f"var.{v}")
    for v in re.findall(r"(?<![\w.])local\.([A-Za-z0-9_]+)", expr):
        if v not in m.locals:
            missing.append(f"local.{v}")
    return missing


def check_template_path(path_expr: str, m) -> None:
    """The default asl_path, resolved from each environment, must be a file in jobs/."""
    if "local.asl_file" not in path_expr and "var.asl_path" not in path_expr:
        fail("terraform/modules/etl", f"templatefile path {path_expr!r} is not asl_path")
        return
    default = str(m.variables.get("asl_path", {}).get("default", ""))
    for env in sorted(p for p in ENVS.iterdir() if p.is_dir()):
        resolved = (env / default.replace("$${path.root}", ".").replace("${path.root}", ".")).resolve()
        if not resolved.is_file() or resolved.parent != JOBS.resolve():
            fail(f"terraform/modules/etl: asl_path default from {env.relative_to(REPO)}", f"resolves to {resolved}, not a file in jobs/")


def check_map_twins(where: str, doc: dict) -> None:
    """The two Maps' processors are the same but for the Distributed one's failure ends."""
    states = doc.get("States", {})
    inline, scale = states.get("CompactPartitions"), states.get("CompactPartitionsAtScale")
    if inline is None and scale is None:
        return
    if inline is None or scale is None:
        fail(where, "CompactPartitions and CompactPartitionsAtScale go together (small and large plans)")
        return
    a, b = inline.get("ItemProcessor", {}), scale.get("ItemProcessor", {})
    if a.get("ProcessorConfig", {}).get("Mode") != "INLINE" or b.get("ProcessorConfig", {}).get("Mode") != "DISTRIBUTED":
        fail(where, "CompactPartitions must be INLINE and CompactPartitionsAtScale DISTRIBUTED")
    if "ItemReader" not in scale or "ToleratedFailureCountPath" not in scale and "ToleratedFailureCount" not in scale:
        fail(where, "CompactPartitionsAtScale must read its items from S3 and bound its tolerated failures")
    sa, sb = dict(a.get("States", {})), dict(b.get("States", {}))
    ends = {n for n, s in sb.items() if s.get("Type") == "Fail"}
    if len(ends) != 1:
        fail(where, f"CompactPartitionsAtScale needs exactly one Fail state for failed partitions, has {sorted(ends)}")
        return
    end = ends.pop()
    sb.pop(end)
    if a.get("StartAt") != b.get("StartAt") or set(sa) != set(sb):
        fail(where, f"the two Maps' processors differ in their states: {sorted(set(sa) ^ set(sb))}")
        return
    for name, s in sa.items():
        twin = dict(sb[name])
        if twin.get("Next") == end:
            # A failed partition's record ends the inline iteration; the child execution fails.
            if s.get("End") is not True:
                fail(where, f"{name} leads to {end} in the Distributed Map but does not end the inline iteration")
            twin.pop("Next")
            twin["End"] = True
        if twin != s:
            fail(where, f"state {name} differs between CompactPartitions and CompactPartitionsAtScale")


def main() -> int:
    files = sorted(JOBS.glob("*.asl.json"))
    if not files:
        print("check_asl: no jobs/*.asl.json found", file=sys.stderr)
        return 1
    tf_vars, path_expr, etl = templatefile_vars()
    if path_expr:
        check_template_path(path_expr, etl)

    used: set[str] = set()
    n_states = n_tasks = 0
    for f in files:
        where = str(f.relative_to(REPO))
        text = f.read_text()
        try:
            doc = json.loads(text)
        except ValueError as e:
            fail(where, f"not valid JSON: {e}")
            continue
        if "%{" in text:
            fail(where, "contains '%{', a templatefile directive")
        n_states += check_scope(where, doc)
        n_tasks += check_error_handling(where, doc)
        check_map_twins(where, doc)

        for name in PLACEHOLDER.findall(text):
            used.add(name)
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                fail(where, f"placeholder ${{{name}}} is an expression; pass a variable instead")
            elif name not in tf_vars:
                fail(where, f"placeholder ${{{name}}} is not provided by the templatefile call in terraform/modules/etl")
            else:
                missing = declared(etl, tf_vars[name])
                refs = re.findall(r"(?<![\w.])(?:aws_[a-z0-9_]+\.|data\.|var\.|local\.)", tf_vars[name])
                if missing:
                    fail(where, f"${{{name}}} = {tf_vars[name]} refers to {missing}, not declared in terraform/modules/etl")
                elif not refs:
                    fail(where, f"${{{name}}} = {tf_vars[name]} refers to nothing in terraform/modules/etl")
        # Rendered with stand-in values, it must still be valid JSON.
        try:
            json.loads(PLACEHOLDER.sub("x", text))
        except ValueError as e:
            fail(where, f"not valid JSON once rendered: {e}")

    for name in sorted(set(tf_vars) - used):
        fail("terraform/modules/etl", f"templatefile variable {name} is used by no jobs/*.asl.json")

    return report(
        "check_asl",
        failures,
        f"{len(files)} definition(s), {n_states} states, {n_tasks} Lambda tasks, {len(used)} placeholders",
    )


if __name__ == "__main__":
    sys.exit(main())
