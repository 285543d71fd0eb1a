#!/usr/bin/env python3
"""Checks that the workspace's `rust-version` is true: no dependency in
Cargo.lock asks for a newer Rust than the workspace declares. (Whether our
own code fits is clippy's `incompatible_msrv` lint, run by run-all.sh.)"""
import json
import subprocess
import sys


def version(text):
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


metadata = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
)
members = set(metadata["workspace_members"])
ours = {
    version(p["rust_version"])
    for p in metadata["packages"]
    if p["id"] in members and p.get("rust_version")
}
if len(ours) != 1:
    sys.exit(f"msrv: the workspace's packages declare {sorted(ours)}; expected one rust-version")
declared = ours.pop()
newer = [
    (p["name"], p["version"], p["rust_version"])
    for p in metadata["packages"]
    if p["id"] not in members
    and p.get("rust_version")
    and version(p["rust_version"]) > declared
]
if newer:
    for name, ver, needs in newer:
        print(f"msrv: {name} {ver} needs Rust {needs}, above the declared {'.'.join(map(str, declared))}")
    sys.exit(1)
print(f"msrv: rust-version {'.'.join(map(str, declared))} covers every dependency")
