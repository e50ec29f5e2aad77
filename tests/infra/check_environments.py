"""The environments one configuration deploys: terraform/envs/poc/environments/<env>.tfvars.

Every environment (at least poc, dev and prod) is the same root module with its own variables
file and its own state (`<env>.s3.tfbackend`, or a workspace of that name with local state).
This script checks what keeps them apart: each file sets `environment` to its own name (every
resource name, role and key alias derives from `<project>-<environment>`), sets only variables
the root declares, gives its VPC a CIDR block no other environment uses (so they can be peered),
and keeps its state under a key of its own.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import hcl2  # noqa: E402
from tfmodel import REPO, load_all, value  # noqa: E402

ROOT = REPO / "terraform" / "envs" / "poc"
NAME = re.compile(r"^[a-z][a-z0-9-]{2,30}$")  # the shared-services module's name_prefix rule


def main() -> int:
    failures: list[str] = []
    root = load_all().get(ROOT)
    if root is None:
        print("check_environments: terraform/envs/poc not found", file=sys.stderr)
        return 1
    declared = set(root.variables)
    project = root.variables.get("project", {}).get("default", "eventlake")
    files = sorted((ROOT / "environments").glob("*.tfvars"))
    names = [f.stem for f in files]
    for need in ("poc", "dev", "prod"):
        if need not in names:
            failures.append(f"no environments/{need}.tfvars")
    cidrs: dict[str, ipaddress.IPv4Network] = {}  # "<env> <variable>" -> range
    for f in files:
        env = f.stem
        with f.open() as fh:
            values = value(hcl2.load(fh))
        for k in values:
            if k not in declared:
                failures.append(f"{f.name}: sets {k}, which envs/poc does not declare")
        if values.get("environment") != env:
            failures.append(f"{f.name}: environment is {values.get('environment')!r}, not {env!r}")
        if not NAME.match(f"{project}-{env}"):
            failures.append(f"{f.name}: name prefix {project}-{env} breaks the naming rule")
        # The environment's VPC and its teams' VPCs: every range apart from every other
        # environment's, and the teams' apart from the environment's own.
        mine = []
        for var in ("vpc_cidr", "team_vpc_supernet"):
            cidr = values.get(var, root.variables.get(var, {}).get("default"))
            try:
                net = ipaddress.ip_network(cidr)
            except ValueError:
                failures.append(f"{f.name}: {var} {cidr!r} is not a network")
                continue
            for other, o in cidrs.items():
                if net.overlaps(o):
                    failures.append(f"{f.name}: {var} {net} overlaps {other} {o}")
            for v, o in mine:
                if net.overlaps(o):
                    failures.append(f"{f.name}: {var} {net} overlaps its own {v} {o}")
            mine.append((var, net))
        for var, net in mine:
            cidrs[f"{env} {var}"] = net
        backend = f.with_name(f"{env}.s3.tfbackend")
        if not backend.exists():
            failures.append(f"no environments/{backend.name}")
        else:
            with backend.open() as fh:
                key = value(hcl2.load(fh)).get("key", "")
            if f"/{env}/" not in key:
                failures.append(f"{backend.name}: state key {key!r} is not the environment's own")
    if failures:
        for x in failures:
            print(f"check_environments: {x}", file=sys.stderr)
        return 1
    print(f"check_environments: ok ({', '.join(names)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
