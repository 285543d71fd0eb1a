#!/usr/bin/env python3
"""Summarise an Autobahn|Testsuite fuzzingclient report.

Reads REPORT_DIR/index.json (written by `wstest -m fuzzingclient`), prints per
agent (server) how many cases ended in each behaviour, then every FAILED or
NON-STRICT case with the reason Autobahn gives in that case's JSON file, and
exits 1 when an agent named with --require-clean has any FAILED, NON-STRICT
or UNIMPLEMENTED case (or a behaviour this script does not know, or is missing from the
report). Other agents are reported only.

usage: summarize.py REPORT_DIR [--require-clean AGENT]... [--expect-cases N]
"""

import argparse
import json
import os
import re
import sys

BEHAVIOURS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
BAD = {"FAILED", "NON-STRICT"}
# A required agent negotiates every extension the suite tests
# (permessage-deflate): an UNIMPLEMENTED case fails it too.
BAD_REQUIRED = BAD | {"UNIMPLEMENTED"}


def case_key(case_id):
    """Sort "9.1.10" after "9.1.9"."""
    return tuple(int(part) if part.isdigit() else part for part in case_id.split("."))


def plain(text):
    """Autobahn's case texts are HTML fragments: one line of plain text."""
    text = re.sub(r"<br\s*/?>", " ", text)
    return " ".join(re.sub(r"<[^>]+>", "", text).split())


def short(value, limit=160):
    """A received or expected event list, cut to one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def case_detail(report_dir, entry):
    """The per-case JSON, or {} when it is missing or unreadable."""
    path = os.path.join(report_dir, entry.get("reportfile", ""))
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report_dir")
    parser.add_argument(
        "--require-clean",
        action="append",
        default=[],
        metavar="AGENT",
        help="fail the run if this agent has a FAILED, NON-STRICT or UNIMPLEMENTED case",
    )
    parser.add_argument(
        "--expect-cases",
        type=int,
        default=None,
        metavar="N",
        help="fail the run if a required agent ran other than N cases",
    )
    args = parser.parse_args()

    index_path = os.path.join(args.report_dir, "index.json")
    try:
        with open(index_path, encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, ValueError) as error:
        print(f"autobahn: cannot read {index_path}: {error}", file=sys.stderr)
        return 1

    failing = []
    agents = sorted(set(index) | set(args.require_clean))
    width = max([len("server")] + [len(a) for a in agents])
    extra = sorted(
        {e["behavior"] for cases in index.values() for e in cases.values()} - set(BEHAVIOURS)
    )
    columns = BEHAVIOURS + extra
    print()
    print(
        f"{'server':<{width}}  "
        + "  ".join(f"{c:>{max(len(c), 5)}}" for c in columns)
        + f"  {'total':>5}  gate"
    )
    for agent in agents:
        cases = index.get(agent, {})
        counts = {c: 0 for c in columns}
        for entry in cases.values():
            counts[entry["behavior"]] += 1
        gate = "required" if agent in args.require_clean else "report only"
        print(
            f"{agent:<{width}}  "
            + "  ".join(f"{counts[c]:>{max(len(c), 5)}}" for c in columns)
            + f"  {len(cases):>5}  {gate}"
        )

    for agent in agents:
        cases = index.get(agent, {})
        required = agent in args.require_clean
        if required and not cases:
            failing.append(f"{agent}: no results in the report")
            continue
        if required and args.expect_cases is not None and len(cases) != args.expect_cases:
            failing.append(f"{agent}: ran {len(cases)} cases, expected {args.expect_cases}")
        bad = [
            case_id
            for case_id in sorted(cases, key=case_key)
            if cases[case_id]["behavior"] in (BAD_REQUIRED if required else BAD)
            or cases[case_id]["behavior"] not in BEHAVIOURS
        ]
        unclean = [
            case_id
            for case_id in sorted(cases, key=case_key)
            if cases[case_id]["behaviorClose"] not in ("OK", "INFORMATIONAL")
            and case_id not in bad
            and cases[case_id]["behavior"] != "UNIMPLEMENTED"
        ]
        if bad:
            print(f"\n{agent}: {len(bad)} FAILED/NON-STRICT{'/UNIMPLEMENTED' if required else ''} case(s)")
            # Cases that fail the same way (same behaviour, same expectation,
            # same close) get the full detail once, then one line each.
            first_of = {}
            for case_id in bad:
                entry = cases[case_id]
                detail = case_detail(args.report_dir, entry)
                reason = detail.get("remoteCloseReason")
                print(
                    f"  {case_id:<8} {entry['behavior']:<10} {entry['duration']} ms, "
                    f"server closed with {entry['remoteCloseCode']}"
                    + (f" {reason!r}" if reason else "")
                    + f", closing behaviour {entry['behaviorClose']}"
                )
                key = (
                    entry["behavior"],
                    entry["behaviorClose"],
                    entry["remoteCloseCode"],
                    detail.get("expectation"),
                    repr(detail.get("received")),
                )
                if key in first_of:
                    print(f"           {'':<9} (fails as {first_of[key]} does)")
                    continue
                first_of[key] = case_id
                for label, key in (("case", "description"), ("spec", "expectation")):
                    if detail.get(key):
                        print(f"           {label + ':':<9} {plain(detail[key])}")
                if "expected" in detail:
                    print(f"           {'expected:':<9} {short(detail['expected'])}")
                    print(f"           {'received:':<9} {short(detail.get('received'))}")
                verdict = " / ".join(detail[k] for k in ("result", "resultClose") if detail.get(k))
                if verdict:
                    print(f"           {'autobahn:':<9} {verdict}")
                print(f"           {'report:':<9} {os.path.join(args.report_dir, entry['reportfile'][:-5])}.html")
            if required:
                failing.append(
                    f"{agent}: {len(bad)} FAILED/NON-STRICT/UNIMPLEMENTED case(s): {', '.join(bad)}"
                )
        if unclean:
            # Not a gate: Autobahn already counts the close handshake into the
            # behaviour wherever the spec requires it.
            print(
                f"\n{agent}: closing behaviour not OK (does not fail the run) in "
                + ", ".join(f"{c} ({cases[c]['behaviorClose']})" for c in unclean)
            )

    print()
    if failing:
        for line in failing:
            print(f"autobahn: FAIL {line}")
        return 1
    print(
        "autobahn: OK, no FAILED, NON-STRICT or UNIMPLEMENTED case on "
        + ", ".join(args.require_clean)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
