"""Team isolation in the lake and in Athena, shown over the generated IAM policies.

As bus_policies.py does for the bus, this script renders the statements the iam module gives each
team's analyst role (terraform/modules/iam/analysts.tf, plus the shared `lake_data_key` policy
the role also carries) and evaluates them the way IAM evaluates identity policies. For every pair
of teams B and C it checks what B's analysts must be able to do (query in B's workgroup, list and
read B's curated partitions, keep B's query results) and that they can do none of it on C's
partitions, results or workgroup, nor read raw data, quarantine or another prefix of the lake.

The rendering and the evaluator are bus_policies.py's; this script adds what analysts.tf uses
beyond them: a list local (`local.glue_read_arns`) and a two-variable for-map over a module
input (`local.athena_workgroup_arns`). Anything else still fails the suite.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bus_policies as bp  # noqa: E402
from tfmodel import REPO, Module, blocks, load_all  # noqa: E402

REGION, ACCOUNT = bp.REGION, bp.ACCOUNT
PREFIX = "eventlake-poc"
TEAMS = ["checkout", "search", "growth"]
LAKE = f"arn:aws:s3:::{PREFIX}-lake-{ACCOUNT}-{REGION}"
RESULTS = f"arn:aws:s3:::{PREFIX}-athena-results-{ACCOUNT}-{REGION}"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/data-key"

bp.FIXED.update(
    {
        "var.lake_bucket_arn": LAKE,
        "var.athena_results_bucket_arn": RESULTS,
        "var.data_kms_key_arn": KEY,
        "var.glue_database_name": "eventlake_poc",
        "var.glue_table_name": "events",
        "var.job_athena_workgroup_name": f"{PREFIX}-etl",
    }
)
# Module inputs that are maps, as the environment passes them (shared-services' outputs).
INPUT_MAPS = {"var.athena_workgroup_names": {t: f"{PREFIX}-{t}" for t in TEAMS}, "var.team_kms_key_arns": {}}
# The first team is checked with a key of its own (team_kms_key_teams), the others with the data key.
def team_key(t: str) -> str:
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/team-{t}"


class Renderer(bp.Renderer):
    def ref(self, name: str) -> str:
        lk = re.fullmatch(r"lookup\((var\.\w+), each\.key, (var\.\w+)\)", name)
        if lk and lk.group(1) in INPUT_MAPS:
            team = self.ref("each.key")
            return INPUT_MAPS[lk.group(1)].get(team) or self.ref(lk.group(2))
        idx = re.fullmatch(r"local\.([A-Za-z0-9_]+)\[each\.key\]", name)
        if idx:
            expr = str(self.m.locals.get(idx.group(1)))
            fm = re.fullmatch(r'\$\{\{for (\w+), (\w+) in (var\.\w+) : \1 => "(.*)"\}\}', expr)
            if fm and fm.group(3) in INPUT_MAPS:
                team = self.ref("each.key")
                bound = {fm.group(1): team, fm.group(2): INPUT_MAPS[fm.group(3)][team]}
                return self.template(fm.group(4).replace('\\"', '"'), bound)
        return super().ref(name)


def statements(m: Module, doc: str, team: str | None) -> list[dict]:
    body = m.data["aws_iam_policy_document"][doc]
    team_r = Renderer(m, team)
    out = []
    for st in blocks(body.get("statement")):
        res = st.get("resources", [])
        lm = re.fullmatch(r"\$\{local\.([A-Za-z0-9_]+)\}", str(res)) if isinstance(res, str) else None
        if lm:
            items = m.locals.get(lm.group(1))
            if not isinstance(items, list):
                raise ValueError(f"resources {res!r} are not a list local")
            res = items
        if not isinstance(res, list):
            raise ValueError(f"resources {res!r} are not in a form this script can read")
        out.append(
            {
                "sid": st.get("sid"),
                "effect": st.get("effect", "Allow"),
                "actions": list(st.get("actions", [])),
                "resources": [team_r.template(x, {}) for x in res],
                "conditions": [
                    (c["test"], c["variable"], [team_r.template(v, {}) for v in c.get("values", [])])
                    for c in blocks(st.get("condition"))
                ],
            }
        )
    return out


def main() -> int:
    modules = load_all()
    env = modules.get(REPO / "terraform" / "envs" / "poc")
    teams = env.variables.get("teams", {}).get("default") if env else None
    if not isinstance(teams, list) or len(teams) < 2:
        print("analyst_policies: envs/poc needs a default list of at least two teams", file=sys.stderr)
        return 1
    TEAMS[:] = teams
    INPUT_MAPS["var.athena_workgroup_names"] = {t: f"{PREFIX}-{t}" for t in TEAMS}
    INPUT_MAPS["var.team_kms_key_arns"] = {TEAMS[0]: team_key(TEAMS[0])}
    iam = modules.get(REPO / "terraform" / "modules" / "iam")
    if iam is None:
        print("analyst_policies: terraform/modules/iam not found", file=sys.stderr)
        return 1
    shared = statements(iam, "lake_data_key", None)
    allowed = bp.allowed
    fail = bp.fail
    via_s3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    checked = 0

    def wg(t: str) -> str:
        return f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/{PREFIX}-{t}"

    def part(t: str) -> str:
        return f"{LAKE}/curated/events/team={t}/dt=2026-11-20/v=20261120T020000000Z-0a1b2c3d/part-00000.parquet"

    def listing(t: str) -> dict[str, str]:
        return {"s3:prefix": f"curated/events/team={t}/dt=2026-11-20/"}

    for b in TEAMS:
        policy = statements(iam, "analyst", b) + shared
        must = [
            ("athena:StartQueryExecution", wg(b), None),
            ("athena:GetQueryResults", wg(b), None),
            ("glue:GetPartitions", f"arn:aws:glue:{REGION}:{ACCOUNT}:table/eventlake_poc/events", None),
            ("s3:ListBucket", LAKE, listing(b)),
            ("s3:GetObject", part(b), None),
            ("s3:ListBucket", RESULTS, {"s3:prefix": f"team={b}/"}),
            ("s3:PutObject", f"{RESULTS}/team={b}/q-1.csv", None),
            ("s3:GetObject", f"{RESULTS}/team={b}/q-1.csv", None),
            ("kms:Decrypt", KEY, via_s3),
            ("s3:GetBucketLocation", LAKE, None),
        ]
        if b in INPUT_MAPS["var.team_kms_key_arns"]:
            # A team with a key of its own reads and writes its results with it, through S3.
            must += [
                ("kms:GenerateDataKey", team_key(b), via_s3),
                ("kms:Decrypt", team_key(b), via_s3),
            ]
        for action, res, ctx in must:
            checked += 1
            if not allowed(policy, action, res, ctx):
                fail(f"team {b}'s analysts cannot {action} on {res} {ctx or ''}")
        must_not = [
            ("s3:GetObject", f"{LAKE}/raw/team={b}/dt=2026-11-20/hour=10/batch.ndjson.gz", None),
            ("s3:GetObject", f"{LAKE}/quarantine/events/team={b}/dt=2026-11-20/v=1/quarantine.ndjson", None),
            ("s3:GetObject", f"{LAKE}/_catalog/events/team={b}/dt=2026-11-20.json", None),
            ("s3:PutObject", part(b), None),
            ("s3:DeleteObject", part(b), None),
            ("s3:ListBucket", LAKE, {"s3:prefix": "raw/"}),
            ("s3:ListBucket", LAKE, {"s3:prefix": "curated/events/"}),
            ("s3:ListBucket", LAKE, None),
            ("kms:Decrypt", KEY, None),
            ("kms:Decrypt", team_key(b), None),
            ("athena:StartQueryExecution", f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/{PREFIX}-etl", None),
            ("glue:UpdatePartition", f"arn:aws:glue:{REGION}:{ACCOUNT}:table/eventlake_poc/events", None),
        ]
        for c in TEAMS:
            if c == b:
                continue
            must_not += [
                ("s3:GetObject", part(c), None),
                ("s3:ListBucket", LAKE, listing(c)),
                ("s3:ListBucket", LAKE, {"s3:prefix": f"curated/events/team={c}"}),
                ("s3:GetObject", f"{RESULTS}/team={c}/q-1.csv", None),
                ("s3:PutObject", f"{RESULTS}/team={c}/q-1.csv", None),
                ("s3:ListBucket", RESULTS, {"s3:prefix": f"team={c}/"}),
                ("athena:StartQueryExecution", wg(c), None),
                ("athena:GetQueryResults", wg(c), None),
                ("kms:Decrypt", team_key(c), via_s3),
            ]
        for action, res, ctx in must_not:
            checked += 1
            if allowed(policy, action, res, ctx):
                fail(f"team {b}'s analysts may {action} on {res} {ctx or ''}")

    if bp.failures:
        for f in bp.failures:
            print(f"analyst_policies: {f}", file=sys.stderr)
        return 1
    print(f"analyst_policies: ok ({len(TEAMS)} teams, {checked} requests evaluated)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ValueError as e:
        print(f"analyst_policies: {e}", file=sys.stderr)
        sys.exit(1)
