#!/usr/bin/env python3
"""Writes one generated section of docs/performance.md from a measurement script's results.

    loadtest/report.py SECTION --title TITLE --command CMD --rows ROWS.json [--full PATH] [--load L] [--doc DOC]

ROWS.json is a list of {"figure", "value", "target", "met"} objects ("met": true, false or null when the
figure has no target). The section is the text between the markers

    <!-- generated: SECTION -->
    <!-- end: SECTION -->

in the document (docs/performance.md unless --doc says otherwise; appended at the end when the markers are
missing). Everything between them is replaced by one compact section: a header carrying the title, the
command, the UTC date and the commit (`git rev-parse --short HEAD`, marked "+local changes" when src/ or
the manifests differ from it), one line with the machine's cores, the load average before the run and
where the run's full output is kept (--full, a path under loadtest/results/, which is not committed), and
one table with each figure, its target and its verdict. Nothing outside the markers is touched.

Failure modes: a missing or malformed ROWS.json, a bad section name or a missing document exits 2 with a
one-line message and leaves the document as it was (the new text is written to a temporary file and
renamed over the old one).
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DOC = os.path.join(ROOT, "docs", "performance.md")
# The verdict column: "met" / "missed" against the target, "—" for a figure without one.
VERDICT = {True: "met", False: "**missed**", None: "—"}


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True, check=False).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src", "Cargo.toml", "Cargo.lock")
    return sha + ("+local changes" if dirty else "")


def cell(text) -> str:
    """A table cell: a pipe would split the row."""
    return str(text).replace("|", "\\|")


def render(args: argparse.Namespace, rows: list) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = args.load or open("/proc/loadavg").read().split()[0]
    note = f"{os.cpu_count()} cores, load average {load} before the run"
    if args.full:
        full = os.path.relpath(os.path.abspath(args.full), ROOT) if os.path.isabs(args.full) else args.full
        note += f"; full output in `{full}`"
    out = [
        f"<!-- generated: {args.section} -->",
        f"### {args.title}: `{args.command}` — {now}, commit `{commit()}`",
        "",
        note + ".",
        "",
        "| figure | measured | target | verdict |",
        "|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {cell(r['figure'])} | {cell(r['value'])} | {cell(r.get('target') or '—')} "
            f"| {VERDICT[r.get('met')]} |"
        )
    out.append(f"<!-- end: {args.section} -->")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("section")
    p.add_argument("--title", required=True)
    p.add_argument("--command", required=True)
    p.add_argument("--rows", required=True)
    p.add_argument("--full", help="where the run's full output is kept (named in the section, not copied)")
    p.add_argument("--load", help="load average to report (default: the current one)")
    p.add_argument("--doc", default=DOC, help="the document to update (default: docs/performance.md)")
    args = p.parse_args()
    if not re.fullmatch(r"[a-z0-9-]+", args.section):
        print(f"report.py: bad section name {args.section!r}", file=sys.stderr)
        return 2
    try:
        rows = json.load(open(args.rows, encoding="utf-8"))
        assert isinstance(rows, list) and all(isinstance(r, dict) and "figure" in r and "value" in r for r in rows)
        assert all(r.get("met") in VERDICT for r in rows)
    except (OSError, ValueError, AssertionError) as e:
        print(f"report.py: unusable rows file {args.rows}: {str(e) or 'wrong shape'}", file=sys.stderr)
        return 2
    try:
        doc = open(args.doc, encoding="utf-8").read()
    except OSError as e:
        print(f"report.py: cannot read {args.doc}: {e}", file=sys.stderr)
        return 2
    block = render(args, rows)
    pat = re.compile(
        rf"<!-- generated: {re.escape(args.section)} -->.*?<!-- end: {re.escape(args.section)} -->", re.S
    )
    if pat.search(doc):
        doc = pat.sub(lambda _: block, doc, count=1)
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    tmp = args.doc + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(doc)
    os.replace(tmp, args.doc)
    print(f"{args.doc}: section {args.section!r} regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
