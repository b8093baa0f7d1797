#!/usr/bin/env python3
"""Writes one generated section of docs/performance.md from a measurement script's results.

    loadtest/report.py SECTION --title TITLE --command CMD --rows ROWS.json [--verbatim OUT.txt] [--load L]

ROWS.json is a list of {"figure", "value", "target", "met"} objects ("met": true, false or null when the
figure has no target). The section is the text between the markers

    <!-- generated: SECTION -->
    <!-- end: SECTION -->

in docs/performance.md (appended at the end of the file when the markers are missing); everything between
them is replaced, so the figures in that section are always the last run of the command, with its date,
commit and machine load. Nothing outside the markers is touched.

Failure modes: a missing or malformed ROWS.json exits 2 with a one-line message and leaves the document
as it was (the new text is written to a temporary file and renamed over the old one).
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "performance.md")


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src", "Cargo.toml", "Cargo.lock")
    return sha + ("+local changes" if dirty else "")


def render(args: argparse.Namespace, rows: list) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = args.load or open("/proc/loadavg").read().split()[0]
    out = [
        f"<!-- generated: {args.section} -->",
        f"### {args.title}",
        "",
        f"`{args.command}` — {now}, commit `{commit()}`, {os.cpu_count()} cores, load average {load} "
        "before the run. Regenerate with the same command (`--report`); do not edit by hand.",
        "",
        "| figure | measured | target | met |",
        "|---|---|---|---|",
    ]
    for r in rows:
        met = {True: "yes", False: "**no**", None: "—"}[r.get("met")]
        out.append(f"| {r['figure']} | {r['value']} | {r.get('target') or '—'} | {met} |")
    if args.verbatim:
        text = open(args.verbatim, encoding="utf-8").read().rstrip("\n")
        out += ["", "```", text, "```"]
    out.append(f"<!-- end: {args.section} -->")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("section")
    p.add_argument("--title", required=True)
    p.add_argument("--command", required=True)
    p.add_argument("--rows", required=True)
    p.add_argument("--verbatim")
    p.add_argument("--load", help="load average to report (default: the current one)")
    args = p.parse_args()
    if not re.fullmatch(r"[a-z0-9-]+", args.section):
        print(f"report.py: bad section name {args.section!r}", file=sys.stderr)
        return 2
    try:
        rows = json.load(open(args.rows, encoding="utf-8"))
        assert isinstance(rows, list) and all("figure" in r and "value" in r for r in rows)
    except (OSError, ValueError, AssertionError) as e:
        print(f"report.py: unusable rows file {args.rows}: {e or 'wrong shape'}", file=sys.stderr)
        return 2
    block = render(args, rows)
    doc = open(DOC, encoding="utf-8").read()
    pat = re.compile(
        rf"<!-- generated: {re.escape(args.section)} -->.*?<!-- end: {re.escape(args.section)} -->", re.S
    )
    if pat.search(doc):
        doc = pat.sub(lambda _: block, doc, count=1)
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    tmp = DOC + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(doc)
    os.replace(tmp, DOC)
    print(f"docs/performance.md: section {args.section!r} regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
