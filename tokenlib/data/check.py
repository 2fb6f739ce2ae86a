"""``python -m tokenlib.data check``: validate every table against ``data/schema.yaml`` and print the share of
rows resting on the publisher's own page (:mod:`tokenlib.data.provenance`).

Lives apart from the loader because the share is computed from loaded tables: the loader cannot import it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from tokenlib.data import provenance
from tokenlib.data.loader import DataValidationError, default_data_dir, table_names, validate_file
from tokenlib.errors import UnknownChoiceError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tokenlib.data", description="Validate the data tables against data/schema.yaml.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate data files against data/schema.yaml")
    check.add_argument("--table", help="table name (default: every table)")
    check.add_argument("--file", help="a CSV to validate as --table (default: data/<table>.csv)")
    args = parser.parse_args(argv)
    if args.file and not args.table:  # one file cannot be every table
        parser.error(f"--file {args.file} needs --table, the table to validate it as; choose one of {list(table_names())}")
    tables = [args.table] if args.table else table_names()
    failed = False
    for name in tables:
        path = Path(args.file) if args.file else default_data_dir() / f"{name}.csv"
        try:
            df = validate_file(name, path)
        except (DataValidationError, FileNotFoundError, UnknownChoiceError) as exc:
            failed = True
            print(f"FAIL {name}: {exc}")
        else:
            print(f"ok   {name}: {len(df)} rows ({path})")
    if not args.table and not failed:
        try:
            share = provenance.primary_share()
        except DataValidationError as exc:
            print(f"FAIL providers: {exc}")
            return 1
        print(provenance.share_report(share))
    return 1 if failed else 0

