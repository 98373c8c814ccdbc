#!/usr/bin/env python3
"""Checks that every module uses only the modules docs/layers.txt allows it to.

Reads every `#include "..."` in the sources of the module folders and every prefsync_*
library that target_link_libraries names in their CMakeLists.txt, and reports each use the
table does not allow as FILE:LINE. tests/ and bench/ are not checked: tests may reach
anywhere. Exit status: 0 all allowed, 1 violations (all listed), 2 the table is unusable.

Usage: scripts/check-layers.py [ROOT] [--table FILE]   (ROOT: the repository, default ..)
"""
import argparse
import os
import re
import sys

SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".hxx", ".ipp", ".inl")
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
CMAKE_TARGET = re.compile(r"\b(add_library|add_executable)\s*\(\s*([A-Za-z0-9_.+-]+)", re.IGNORECASE)
CMAKE_LINK = re.compile(r"\btarget_link_libraries\s*\(([^)]*)\)", re.IGNORECASE | re.DOTALL)
ANYTHING = "*"


class TableError(Exception):
    pass


class Module:
    def __init__(self, name, paths, allowed, line):
        self.name, self.paths, self.allowed, self.line = name, paths, allowed, line

    def may_use(self, other):
        return other is self or self.allowed == ANYTHING or other.name in self.allowed

    def describe_allowed(self):
        if self.allowed == ANYTHING:
            return "anything"
        return " ".join(self.allowed) or "nothing"


def read_table(path):
    modules, by_path = [], {}
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            where = f"{path}:{number}"
            if ":" not in line:
                raise TableError(f"{where}: expected MODULE FOLDERS : MAY_USE")
            left, right = (part.split() for part in line.split(":", 1))
            if len(left) != 2 or not right:
                raise TableError(f"{where}: expected MODULE FOLDERS : MAY_USE (folders comma-separated)")
            name, folders = left
            if any(m.name == name for m in modules):
                raise TableError(f"{where}: module {name} is listed twice")
            paths = [p.strip("/") for p in folders.split(",") if p.strip("/")]
            for p in paths:
                if p in by_path:
                    raise TableError(f"{where}: {p} is already claimed by {by_path[p]}")
                by_path[p] = name
            if right == [ANYTHING]:
                allowed = ANYTHING
            elif right == ["-"]:
                allowed = []
            else:
                allowed = right
            modules.append(Module(name, paths, allowed, number))
    names = {m.name for m in modules}
    for m in modules:
        if m.allowed != ANYTHING:
            for other in [a for a in m.allowed if a not in names]:
                raise TableError(f"{path}:{m.line}: {m.name} may use \"{other}\", which is no module")
    return modules


def module_of(relpath, modules):
    """The module whose folder (or file) is the longest prefix of relpath; None if none."""
    best, best_len = None, -1
    for m in modules:
        for p in m.paths:
            if (relpath == p or relpath.startswith(p + "/")) and len(p) > best_len:
                best, best_len = m, len(p)
    return best


def resolve_include(root, source, include):
    """The repository path an include names, or None for one outside the repository."""
    for base in (root, os.path.dirname(os.path.join(root, source))):
        candidate = os.path.normpath(os.path.join(base, include))
        if os.path.isfile(candidate):
            rel = os.path.relpath(candidate, root)
            if not rel.startswith(".."):
                return rel.replace(os.sep, "/")
    return None


def walk(root, modules):
    """Every file under the folders the table's modules live in (their top-level folders)."""
    tops = sorted({p.split("/", 1)[0] for m in modules for p in m.paths})
    for top in tops:
        start = os.path.join(root, top)
        if os.path.isfile(start):
            yield top
            continue
        for directory, subdirs, files in os.walk(start):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            for name in sorted(files):
                yield os.path.relpath(os.path.join(directory, name), root).replace(os.sep, "/")


def check(root, modules, table_name):
    problems, counts = [], {"sources": 0, "includes": 0, "links": 0}
    libraries, cmake_files = {}, []
    for rel in walk(root, modules):
        owner = module_of(rel, modules)
        if rel.endswith(SOURCE_SUFFIXES):
            counts["sources"] += 1
            if owner is None:
                problems.append(f"{rel}: in no module of {table_name}; add its folder to a module's line")
                continue
            with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
                for number, line in enumerate(f, 1):
                    match = INCLUDE.match(line)
                    if not match:
                        continue
                    counts["includes"] += 1
                    target = resolve_include(root, rel, match.group(1))
                    if target is None:
                        continue
                    used = module_of(target, modules)
                    if used is None:
                        problems.append(f"{rel}:{number}: {owner.name} includes \"{match.group(1)}\", which is in no module")
                    elif not owner.may_use(used):
                        problems.append(f"{rel}:{number}: {owner.name} includes \"{match.group(1)}\" ({used.name}); "
                                        f"{owner.name} may use: {owner.describe_allowed()}")
        elif os.path.basename(rel) == "CMakeLists.txt" and owner is not None:
            with open(os.path.join(root, rel), encoding="utf-8") as f:
                text = "".join(l.split("#", 1)[0] + "\n" for l in f.read().splitlines())
            cmake_files.append((rel, owner, text))
            for match in CMAKE_TARGET.finditer(text):
                libraries[match.group(2)] = owner
    for rel, owner, text in cmake_files:
        for match in CMAKE_LINK.finditer(text):
            tokens = match.group(1).split()
            if not tokens:
                continue
            user = libraries.get(tokens[0], owner)
            for offset, token in zip(_token_offsets(match.group(1), tokens), tokens):
                used = libraries.get(token)
                if token == tokens[0] or used is None:
                    continue
                counts["links"] += 1
                if not user.may_use(used):
                    number = text.count("\n", 0, match.start(1) + offset) + 1
                    problems.append(f"{rel}:{number}: {tokens[0]} ({user.name}) links {token} ({used.name}); "
                                    f"{user.name} may use: {user.describe_allowed()}")
    return problems, counts


def _token_offsets(text, tokens):
    position = 0
    for token in tokens:
        position = text.index(token, position)
        yield position
        position += len(token)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    parser.add_argument("--table", help="the allowed-edges table (default: ROOT/docs/layers.txt)")
    args = parser.parse_args(argv)
    root = os.path.abspath(args.root)
    table = args.table or os.path.join(root, "docs", "layers.txt")
    table_name = os.path.relpath(table, root) if not os.path.relpath(table, root).startswith("..") else table
    try:
        modules = read_table(table)
    except (OSError, TableError) as e:
        print(f"check-layers: {e}", file=sys.stderr)
        return 2
    problems, counts = check(root, modules, table_name)
    for problem in problems:
        print(problem)
    summary = (f"{counts['sources']} sources, {counts['includes']} includes, {counts['links']} library links "
               f"checked against {table_name}")
    if problems:
        print(f"check-layers: {len(problems)} use(s) the table does not allow ({summary})", file=sys.stderr)
        return 1
    print(f"check-layers: ok: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
