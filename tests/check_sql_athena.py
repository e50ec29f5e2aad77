"""Every saved query in sql/ parses as Athena (Trino) SQL, with its parameters' defaults in place.

Athena's engine cannot run here; the local engine runs the same text in the Rust tests. This check
catches what DataFusion would accept but Athena would not parse.
"""
import pathlib
import re
import sys

import sqlglot
from sqlglot.errors import ParseError

failed = 0
files = sorted(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "sql").glob("*.sql"))
if not files:
    sys.exit("no saved queries found")
for f in files:
    text = f.read_text()
    for name, _kind, default in re.findall(r"^-- param: (\S+) (\S+) (\S+)$", text, re.M):
        text = text.replace("{{" + name + "}}", f"'{default}'")
    if "{{" in text:
        print(f"{f}: undeclared parameter left in the SQL")
        failed += 1
        continue
    try:
        statements = sqlglot.parse(text, read="athena")
    except ParseError as e:
        print(f"{f}: Athena cannot parse it: {e}")
        failed += 1
        continue
    if len([s for s in statements if s is not None]) != 1:
        print(f"{f}: expected one statement")
        failed += 1
        continue
    print(f"{f}: ok")
sys.exit(1 if failed else 0)
