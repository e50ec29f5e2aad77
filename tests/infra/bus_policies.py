"""Team isolation on the bus, shown over the generated IAM policies (no AWS account needed).

The IAM policy simulator is not available offline, so this script renders the statements the bus
module generates for each team's consumer role (terraform/modules/bus/teams.tf) and for the
bridge, with the environment's teams and subscriptions, and evaluates them the way IAM does for
identity policies: a request is allowed when an Allow statement matches its action, its resource
and all of its conditions, and no Deny statement matches. Then it checks, for every pair of
teams B and C, what B's role must be able to do on its own queue, DLQ, topic and consumer group,
and that it can do nothing on C's.

Rendering understands what the module uses: `${local.x}`, `${var.x}` (defaults or the fixed
inputs below), `${each.key}`, and `local.m[each.key]` where `m` is a
`{for t in ... : t => "template"}` map. Anything else is an error, so a policy this script cannot
read fails the suite instead of passing it.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tfmodel import REPO, Module, blocks, load_all  # noqa: E402

PARTITION, REGION, ACCOUNT = "aws", "eu-west-1", "111122223333"
FIXED = {
    "local.partition": PARTITION,
    "local.region": REGION,
    "local.account_id": ACCOUNT,
    "var.name_prefix": "eventlake-poc",
    "var.kms_key_arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/data-key",
    "var.lake_bucket_arn": "arn:aws:s3:::eventlake-poc-lake",
    "var.ledger_table_name": "eventlake-poc-ledger",
    "var.fanout_log_group_name": "/aws/lambda/eventlake-poc-bus-fanout",
    "var.bridge_log_group_name": "/aws/lambda/eventlake-poc-bus-bridge",
}

# Module inputs that are maps, as the environment passes them (shared-services' outputs): the
# first receiving team is checked with a lake key of its own (team_kms_key_teams).
INPUT_MAPS: dict[str, dict[str, str]] = {"var.lake_team_kms_keys": {}}


def team_lake_key(team: str) -> str:
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/team-{team}"


failures: list[str] = []


def fail(msg: str) -> None:
    failures.append(msg)


class Renderer:
    def __init__(self, m: Module, team: str | None):
        self.m = m
        self.team = team

    def ref(self, name: str) -> str:
        if name in FIXED:
            return FIXED[name]
        if name == "each.key":
            if self.team is None:
                raise ValueError("each.key outside a per-team document")
            return self.team
        if name.startswith("var."):
            v = self.m.variables.get(name[4:], {})
            if "default" in v and isinstance(v["default"], str):
                return v["default"]
            raise ValueError(f"no value for {name}")
        idx = re.fullmatch(r"local\.([A-Za-z0-9_]+)\[each\.key\]", name)
        if idx:
            expr = self.m.locals.get(idx.group(1))
            fm = re.fullmatch(r'\$\{\{for (\w+) in [^:]+: \1 => "(.*)"\}\}', str(expr))
            if not fm:
                raise ValueError(f"local.{idx.group(1)} is not a for-map this script can read: {expr!r}")
            return self.template(fm.group(2).replace('\\"', '"'), {fm.group(1): self.ref("each.key")})
        if name.startswith("local."):
            v = self.m.locals.get(name[6:])
            if not isinstance(v, str):
                raise ValueError(f"{name} is not a string local: {v!r}")
            return self.template(v, {})
        raise ValueError(f"cannot render {name}")

    def template(self, s: str, bound: dict[str, str]) -> str:
        def sub(mo: re.Match) -> str:
            inner = mo.group(1)
            if inner in bound:
                return bound[inner]
            return self.ref(inner)

        for _ in range(10):
            new = re.sub(r"\$\{([^${}]+)\}", sub, s)
            if new == s:
                break
            s = new
        if "${" in s:
            raise ValueError(f"unrendered expression left in {s!r}")
        return s


def resource_list(m: Module, r: Renderer, value, teams: list[str]) -> list[str]:
    """A statement's resources: a list of templates, `values(local.m)` of a per-team map, or
    `concat([ref], values(var.m))` of a reference and a map the environment passes in."""
    if isinstance(value, list):
        return [r.template(x, {}) for x in value]
    cm = re.fullmatch(r"\$\{concat\(\[([a-z_.]+)\], values\((var\.[a-z_]+)\)\)\}", str(value))
    if cm and cm.group(2) in INPUT_MAPS:
        return [r.ref(cm.group(1))] + list(INPUT_MAPS[cm.group(2)].values())
    vm = re.fullmatch(r"\$\{values\(local\.([A-Za-z0-9_]+)\)\}", str(value))
    if not vm:
        raise ValueError(f"resources {value!r} are not in a form this script can read")
    return [Renderer(m, t).ref(f"local.{vm.group(1)}[each.key]") for t in teams]


def statements(m: Module, doc: str, team: str | None, teams: list[str]) -> list[dict]:
    body = m.data["aws_iam_policy_document"][doc]
    r = Renderer(m, team)
    out = []
    for st in blocks(body.get("statement")):
        out.append(
            {
                "sid": st.get("sid"),
                "effect": st.get("effect", "Allow"),
                "actions": list(st.get("actions", [])),
                "resources": resource_list(m, r, st.get("resources", []), teams),
                "conditions": [
                    (c["test"], c["variable"], [r.template(v, {}) for v in c.get("values", [])])
                    for c in blocks(st.get("condition"))
                ],
            }
        )
    return out


def matches(pattern: str, value: str, case: bool) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def condition_holds(test: str, key: str, values: list[str], context: dict[str, str]) -> bool:
    if key not in context:
        return False
    if test == "StringEquals":
        return context[key] in values
    if test == "StringLike":
        return any(matches(v, context[key], True) for v in values)
    if test == "Bool":
        return context[key] in values
    raise ValueError(f"condition operator {test} is not evaluated here")


def allowed(policy: list[dict], action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    context = context or {}

    def hit(st: dict) -> bool:
        return (
            any(matches(a, action, False) for a in st["actions"])
            and any(matches(r, resource, True) for r in st["resources"])
            and all(condition_holds(t, k, v, context) for t, k, v in st["conditions"])
        )

    if any(st["effect"] == "Deny" and hit(st) for st in policy):
        return False
    return any(st["effect"] == "Allow" and hit(st) for st in policy)


def arns(team: str) -> dict[str, str]:
    tail = f"{REGION}:{ACCOUNT}"
    return {
        "queue": f"arn:aws:sqs:{tail}:eventlake-poc-bus-{team}.fifo",
        "dlq": f"arn:aws:sqs:{tail}:eventlake-poc-bus-{team}-dlq.fifo",
        "topic": f"arn:aws:kafka:{tail}:topic/eventlake-poc-bus/0f1e2d3c-uuid/eventlake.{team}",
        "group": f"arn:aws:kafka:{tail}:group/eventlake-poc-bus/0f1e2d3c-uuid/eventlake-{team}",
    }


CONSUME = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]


def main() -> int:
    modules = load_all()
    bus = modules.get(REPO / "terraform" / "modules" / "bus")
    if bus is None:
        print("bus_policies: terraform/modules/bus not found", file=sys.stderr)
        return 1
    subs = json.loads((REPO / "terraform" / "envs" / "poc" / "subscriptions.json").read_text())
    teams = sorted({r["team"] for r in subs["subscriptions"]})
    if len(teams) < 2:
        print("bus_policies: the environment's subscriptions need two receiving teams to compare", file=sys.stderr)
        return 1
    key = FIXED["var.kms_key_arn"]
    INPUT_MAPS["var.lake_team_kms_keys"] = {teams[0]: team_lake_key(teams[0])}
    cluster = f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/eventlake-poc-bus/0f1e2d3c-uuid"
    checked = 0
    for b in teams:
        policy = statements(bus, "team", b, teams)
        own = arns(b)
        # What B's consumers need.
        for action in CONSUME:
            for what in ("queue", "dlq"):
                checked += 1
                if not allowed(policy, action, own[what]):
                    fail(f"team {b} cannot {action} on its own {what}")
        checked += 1
        if not allowed(policy, "kms:Decrypt", key, {"kms:ViaService": f"sqs.{REGION}.amazonaws.com", "kms:EncryptionContext:aws:sqs:arn": own["queue"]}):
            fail(f"team {b} cannot decrypt its own queue's messages")
        for action, res in (
            ("kafka-cluster:Connect", cluster),
            ("kafka-cluster:ReadData", own["topic"]),
            ("kafka-cluster:DescribeTopic", own["topic"]),
            ("kafka-cluster:AlterGroup", own["group"]),
        ):
            checked += 1
            if not allowed(policy, action, res):
                fail(f"team {b} cannot {action} on {res}")
        # What B's role must not do: write into its queue (only the fan-out does), or read
        # the key outside SQS.
        for action, res, ctx in (
            ("sqs:SendMessage", own["queue"], None),
            ("sqs:PurgeQueue", own["queue"], None),
            ("kafka-cluster:WriteData", own["topic"], None),
            ("kms:Decrypt", key, {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}),
        ):
            checked += 1
            if allowed(policy, action, res, ctx):
                fail(f"team {b} may {action} on {res}")
        # Nothing of another team's.
        for c in teams:
            if c == b:
                continue
            other = arns(c)
            for action in CONSUME + ["sqs:GetQueueUrl", "sqs:SendMessage"]:
                for what in ("queue", "dlq"):
                    checked += 1
                    if allowed(policy, action, other[what]):
                        fail(f"team {b}'s role may {action} on team {c}'s {what}")
            for action in ("kafka-cluster:ReadData", "kafka-cluster:DescribeTopic"):
                checked += 1
                if allowed(policy, action, other["topic"]):
                    fail(f"team {b}'s role may {action} on team {c}'s topic")
            for action in ("kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"):
                checked += 1
                if allowed(policy, action, other["group"]):
                    fail(f"team {b}'s role may {action} on team {c}'s consumer group")
            checked += 1
            if allowed(policy, "kms:Decrypt", key, {"kms:ViaService": f"sqs.{REGION}.amazonaws.com", "kms:EncryptionContext:aws:sqs:arn": other["queue"]}):
                fail(f"team {b}'s role may decrypt team {c}'s messages")

    # The fan-out writes every receiving team's queue and reads nothing of a team's topics; the
    # bridge reads the queues and writes the topics, and cannot send into a queue.
    fanout = statements(bus, "fanout", None, teams)
    bridge = statements(bus, "bridge", None, teams)
    # A keyed team's raw batches are under its own key: the fan-out reads them through S3 and
    # nothing else; no team's consumer role may use that key.
    keyed = team_lake_key(teams[0])
    checked += 3
    if not allowed(fanout, "kms:Decrypt", keyed, {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}):
        fail(f"the fan-out cannot read team {teams[0]}'s raw batches (its own key)")
    if allowed(fanout, "kms:Decrypt", keyed, {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}):
        fail(f"the fan-out may use team {teams[0]}'s lake key outside S3")
    if any(allowed(statements(bus, "team", b, teams), "kms:Decrypt", keyed, {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}) for b in teams):
        fail(f"a team's consumer role may use team {teams[0]}'s lake key")
    for t in teams:
        own = arns(t)
        checked += 4
        if not allowed(fanout, "sqs:SendMessage", own["queue"]):
            fail(f"the fan-out cannot send to team {t}'s queue")
        if allowed(fanout, "sqs:ReceiveMessage", own["queue"]):
            fail(f"the fan-out may read team {t}'s queue")
        if not allowed(bridge, "kafka-cluster:WriteData", own["topic"]):
            fail(f"the bridge cannot write team {t}'s topic")
        if allowed(bridge, "sqs:SendMessage", own["queue"]):
            fail(f"the bridge may send to team {t}'s queue")

    if failures:
        for f in failures:
            print(f"bus_policies: {f}", file=sys.stderr)
        return 1
    print(f"bus_policies: ok ({len(teams)} teams, {checked} requests evaluated)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ValueError as e:
        print(f"bus_policies: {e}", file=sys.stderr)
        sys.exit(1)
