#!/usr/bin/env python3
"""Keeps what is generated from the config key tables in step with them:
docs/prefsync.schema.json (`prefsync config-schema`) and the key reference tables of
config/README.md (`prefsync config-schema --markdown`, each between its
"<!-- BEGIN keys: NAME ... -->" and "<!-- END keys: NAME -->" lines).

  scripts/config-docs.py --write PREFSYNC_BINARY [SOURCE_DIR]   regenerate both
  scripts/config-docs.py --check PREFSYNC_BINARY [SOURCE_DIR]   exit 1, with a diff, if stale

--check is the test Docs.ConfigSchemaAndKeyTablesAreUpToDate: a key added to a table (or a
description changed) without regenerating fails it.
"""
import difflib
import pathlib
import re
import subprocess
import sys

BLOCK = re.compile(r"^<!-- BEGIN keys: (\S+)[^\n]*-->\n.*?^<!-- END keys: \1 -->\n", re.MULTILINE | re.DOTALL)


def generated(binary, *args):
    return subprocess.run([binary, "config-schema", *args], check=True, capture_output=True, text=True).stdout


def splice(readme, blocks):
    """The README with each of its key blocks replaced by the generated one of that name."""
    found = set()

    def replace(match):
        name = match.group(1)
        if name not in blocks:
            raise SystemExit(f"config/README.md has a key table '{name}' that prefsync does not generate")
        found.add(name)
        return blocks[name]

    out = BLOCK.sub(replace, readme)
    missing = sorted(set(blocks) - found)
    if missing:
        raise SystemExit(f"config/README.md lacks the generated key tables {missing}: add their "
                         "<!-- BEGIN keys: NAME --> / <!-- END keys: NAME --> lines where they belong")
    return out


def main():
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in ("--check", "--write"):
        raise SystemExit(__doc__)
    mode, binary = sys.argv[1], sys.argv[2]
    root = pathlib.Path(sys.argv[3] if len(sys.argv) == 4 else pathlib.Path(__file__).resolve().parent.parent)
    schema_file = root / "docs" / "prefsync.schema.json"
    readme_file = root / "config" / "README.md"

    blocks = {m.group(1): m.group(0) for m in BLOCK.finditer(generated(binary, "--markdown"))}
    wanted = {schema_file: generated(binary), readme_file: splice(readme_file.read_text(), blocks)}

    stale = []
    for path, text in wanted.items():
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        if mode == "--write":
            path.write_text(text)
            print(f"wrote {path}")
        else:
            stale.append(path)
            sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                                       str(path), "generated", n=1))
    if stale:
        print(f"\nstale: {', '.join(str(p) for p in stale)}; regenerate with "
              f"scripts/config-docs.py --write {binary}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
