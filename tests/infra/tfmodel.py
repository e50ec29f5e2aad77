"""Reads the Terraform configuration under terraform/ into plain Python structures.

Shared by check_terraform.py and check_asl.py. Needs python-hcl2 (8.x), nothing else.

python-hcl2 keeps literal strings with their quotes ("\"etl\"") and expressions as "${...}";
`value()` turns the first into plain strings and leaves the second as they are, so a caller can
tell a literal from an expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"

_META_KEYS = {"__is_block__", "__comments__", "__inline_comments__"}


def value(x: Any) -> Any:
    """Strips python-hcl2's quoting of literal strings, recursively; drops its metadata keys."""
    if isinstance(x, str):
        if len(x) >= 2 and x[0] == '"' and x[-1] == '"':
            return x[1:-1].replace('\\"', '"')
        return x
    if isinstance(x, list):
        return [value(v) for v in x]
    if isinstance(x, dict):
        return {value(k): value(v) for k, v in x.items() if k not in _META_KEYS}
    return x


def is_expression(s: Any) -> bool:
    """A whole-value expression such as "${var.x}" (not a literal with interpolations in it)."""
    return isinstance(s, str) and s.startswith("${") and s.endswith("}")


def blocks(x: Any) -> list[dict]:
    """A nested block is a list of dicts in python-hcl2's output; a missing one is []."""
    if x is None:
        return []
    if isinstance(x, dict):
        return [x]
    return [b for b in x if isinstance(b, dict)]


@dataclass
class Module:
    path: Path
    files: list[Path] = field(default_factory=list)
    # type -> name -> body
    resources: dict[str, dict[str, dict]] = field(default_factory=dict)
    data: dict[str, dict[str, dict]] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    modules: dict[str, dict] = field(default_factory=dict)
    terraform: list[dict] = field(default_factory=list)
    # file -> its text
    text: dict[Path, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.path.relative_to(REPO))

    def has_resource(self, rtype: str, rname: str) -> bool:
        return rname in self.resources.get(rtype, {})

    def resource_refs(self, expr: str) -> list[tuple[str, str]]:
        """`aws_x.name` references in an expression (resource type, name)."""
        return [
            (t, n)
            for t, n in re.findall(r"(?<![\w.])(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)", expr)
        ]


def load_module(path: Path) -> Module:
    m = Module(path=path)
    for f in sorted(path.glob("*.tf")):
        m.files.append(f)
        text = f.read_text()
        m.text[f] = text
        with f.open() as fh:
            doc = hcl2.load(fh)
        for block in doc.get("resource", []):
            for rtype, named in value(block).items():
                for rname, body in named.items():
                    m.resources.setdefault(rtype, {})[rname] = body
        for block in doc.get("data", []):
            for dtype, named in value(block).items():
                for dname, body in named.items():
                    m.data.setdefault(dtype, {})[dname] = body
        for block in doc.get("variable", []):
            for vname, body in value(block).items():
                m.variables[vname] = body
        for block in doc.get("output", []):
            for oname, body in value(block).items():
                m.outputs[oname] = body
        for block in doc.get("locals", []):
            for lname, v in value(block).items():
                m.locals[lname] = v
        for block in doc.get("module", []):
            for mname, body in value(block).items():
                m.modules[mname] = body
        for block in doc.get("terraform", []):
            m.terraform.append(value(block))
    return m


def module_dirs() -> list[Path]:
    """Every folder under terraform/ that holds .tf files (the modules and the environments)."""
    return sorted({f.parent for f in TERRAFORM.rglob("*.tf") if ".terraform" not in f.parts})


def load_all() -> dict[Path, Module]:
    return {d: load_module(d) for d in module_dirs()}


def report(tool: str, failures: list[str], summary: str) -> int:
    """Prints a check's verdict: every failure on stderr, or one ok line; returns the exit code."""
    import sys

    if failures:
        print(f"{tool}: {len(failures)} failure(s) ({summary})", file=sys.stderr)
        for f in failures:
            print(f"  - {f}", file=sys.stderr)
        return 1
    print(f"{tool}: ok ({summary})")
    return 0
