#!/usr/bin/env python3
"""Fails when the modules of a crate import each other in a circle.

For every crate of the workspace (each `src/lib.rs` or `src/main.rs` under
`crates/` and `examples/`), every file is a module. A file imports another
when its code names a path into it: `use crate::a::b::C`, `super::x`,
`self::y`, or a child module by its bare name. A `mod x;` declaration is not
an import. The script prints every circle (a strongly connected set of two
or more files) and exits 1 if there is one.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def crate_roots():
    for top in ("crates", "examples"):
        base = os.path.join(ROOT, top)
        if not os.path.isdir(base):
            continue
        for name in sorted(os.listdir(base)):
            src = os.path.join(base, name, "src")
            for root in ("lib.rs", "main.rs"):
                if os.path.isfile(os.path.join(src, root)):
                    yield os.path.join(top, name), src, root


def modules_of(src, root_file):
    """Maps module paths (tuples) to files, and files to module paths."""
    by_path = {}
    for dirpath, _, files in os.walk(src):
        rel_dir = os.path.relpath(dirpath, src)
        parts = () if rel_dir == "." else tuple(rel_dir.split(os.sep))
        for file in files:
            if not file.endswith(".rs"):
                continue
            full = os.path.join(dirpath, file)
            if parts == () and file == root_file:
                by_path[()] = full
            elif parts and parts[0] == "bin":
                continue
            elif file == "mod.rs":
                by_path[parts] = full
            else:
                by_path[parts + (file[:-3],)] = full
    return by_path


def strip_comments(text):
    """The code of a file without comments and without its test modules
    (`#[cfg(test)] mod ...`, at the end of a file by this project's style),
    whose `super` is the file itself."""
    tests = re.search(r"#\[cfg\([^\]]*test[^\]]*\)\]\s*mod\s", text)
    if tests:
        text = text[: tests.start()]
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def use_paths(tree):
    """Expands a `use` tree (`a::{b::C, d}`) into its paths."""
    tree = tree.strip()
    brace = tree.find("{")
    if brace == -1:
        return [tree.split(" as ")[0].strip()]
    head = tree[:brace]
    body = tree[brace + 1 : tree.rfind("}")]
    items, depth, current = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        current += ch
    items.append(current)
    paths = []
    for item in items:
        if item.strip():
            paths.extend(head + p for p in use_paths(item))
    return paths


def resolve(segments, here, is_mod_file, modules):
    """The module a path names, as deep as it goes; None outside the crate."""
    if not segments:
        return None
    first, rest = segments[0], segments[1:]
    if first == "crate":
        base = ()
    elif first in ("super", "self"):
        base = here if is_mod_file or here == () else here
        # In `a/b.rs` (module a::b), `self` is a::b and `super` is a.
        while rest is not None and first in ("super", "self"):
            if first == "super":
                base = base[:-1]
            if not rest:
                return base if base in modules else None
            first, rest = rest[0], rest[1:]
        rest = [first] + list(rest)
    elif here + (first,) in modules:
        base, rest = here, [first] + list(rest)
    else:
        return None
    best = base if base in modules else None
    path = base
    for segment in rest:
        path = path + (segment,)
        if path in modules:
            best = path
        else:
            break
    return best


def edges_of(modules):
    files = {v: k for k, v in modules.items()}
    edges = {f: set() for f in files}
    for file, here in files.items():
        is_mod_file = file.endswith("mod.rs") or here == ()
        text = strip_comments(open(file, encoding="utf-8").read())
        paths = []
        for match in re.finditer(r"\buse\s+([^;]+);", text, flags=re.S):
            paths.extend(use_paths(match.group(1)))
        for match in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", text):
            paths.append(match.group(1))
        for match in re.finditer(r"(?<![:\w])(\w+)::\w", text):
            if here + (match.group(1),) in modules:
                paths.append(match.group(0)[:-1])
        for path in paths:
            segments = [s.strip() for s in path.split("::") if s.strip()]
            target = resolve(segments, here, is_mod_file, modules)
            if target is not None and modules[target] != file:
                edges[file].add(modules[target])
    return edges


def circles(edges):
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return found


def main():
    failed = False
    for crate, src, root in crate_roots():
        modules = modules_of(src, root)
        edges = edges_of(modules)
        for circle in circles(edges):
            failed = True
            print(f"{crate}: modules import each other in a circle:")
            for file in circle:
                inside = sorted(os.path.relpath(t, src) for t in edges[file] if t in circle)
                print(f"  {os.path.relpath(file, src)} -> {', '.join(inside)}")
    if failed:
        sys.exit(1)
    print("no import circles between modules")


if __name__ == "__main__":
    main()
