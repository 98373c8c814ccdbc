#!/usr/bin/env python3
"""check-config and the JSON Schema agree (CTest ConfigSchema.*).

  schema_verdicts_test.py CASE PREFSYNC_BINARY SOURCE_DIR

CASE is one of:
  valid       examples/*.yaml and tests/data/configs/valid/: both accept
  invalid     tests/data/configs/invalid/: both reject, check-config naming the key on the
              file's "# expect: KEY.PATH" line, the schema at that key or above it
  looser      tests/data/configs/looser/: check-config rejects (naming the key), the schema
              accepts: the documented limits of a schema
  meta        the schema is a valid draft-07 schema whose every $ref resolves and every
              definition is used

The validator is an independent implementation (python3-jsonschema, Draft7Validator) on the
output of `prefsync config-schema`; YAML is read with the YAML 1.2 core schema, as
yaml-language-server reads it (PyYAML's default is YAML 1.1, where `on` and `no` are
booleans and `1:30` is a number). check-config runs with an environment that holds none of
the variables the configs interpolate and no token, which is the first-run case it must
pass with a warning.
"""
import json
import os
import pathlib
import re
import subprocess
import sys

import jsonschema
import yaml


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema's implicit types."""


Yaml12Loader.yaml_implicit_resolvers = {}
for tag, pattern, first in [
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    ("float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
              r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", list("-+.0123456789")),
]:
    Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:" + tag, re.compile(pattern), first)


def yaml12_int(loader, node):
    text = loader.construct_scalar(node)
    return int(text, 0) if text.startswith(("0x", "0o")) else int(text)


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", yaml12_int)


def unique_keys_mapping(loader, node, deep=False):
    """Duplicate keys are an error, as in YAML 1.2 and yaml-language-server (PyYAML keeps the last)."""
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


Yaml12Loader.construct_mapping = unique_keys_mapping


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Yaml12Loader)


def expected_key(path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = re.fullmatch(r"# expect: (.+)", first)
    if not match:
        raise SystemExit(f"{path}: the first line must be '# expect: KEY.PATH'")
    return match.group(1)


def key_path(error_path):
    """A jsonschema error's path as check-config writes key paths: jobs.j.mapping.Emails[0]."""
    out = ""
    for part in error_path:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out


def where(error):
    return f"{key_path(error.absolute_path) or '(top)'}: {error.message}"


def at_or_above(key, error):
    """Whether a schema error is at `key` or at a map that holds it (a missing or unknown key,
    a rule between keys is reported on the map)."""
    path = key_path(error.absolute_path)
    return not path or key == path or key.startswith((path + ".", path + "["))


class Checker:
    def __init__(self, binary, root):
        self.binary = binary
        self.root = root
        schema = json.loads(subprocess.run([binary, "config-schema"], check=True, capture_output=True,
                                           text=True).stdout)
        jsonschema.Draft7Validator.check_schema(schema)
        self.validator = jsonschema.Draft7Validator(schema)
        # Nothing the configs interpolate, no token, no credentials: the first-run case.
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("PREFSYNC_") and k not in ("CREDENTIALS_DIRECTORY", "PGPASSWORD")}
        self.failures = []

    def check_config(self, path):
        r = subprocess.run([self.binary, "-c", str(path), "check-config"], capture_output=True, text=True,
                           env=self.env, timeout=60)
        return r.returncode, r.stderr

    def schema_errors(self, path):
        """The schema's errors; a file the YAML reader refuses is one error at the top."""
        try:
            document = load(path)
        except yaml.YAMLError as e:
            return [jsonschema.ValidationError(f"not YAML 1.2: {e}")]
        return list(self.validator.iter_errors(document))

    def fail(self, path, message):
        self.failures.append(f"{path.relative_to(self.root)}: {message}")

    def files(self, folder):
        files = sorted((self.root / "tests" / "data" / "configs" / folder).glob("*.yaml"))
        if not files:
            raise SystemExit(f"no configs in tests/data/configs/{folder}")
        return files

    def valid(self):
        files = sorted((self.root / "examples").glob("*.yaml")) + self.files("valid")
        for path in files:
            code, err = self.check_config(path)
            if code != 0:
                self.fail(path, f"check-config refused it (exit {code}):\n{err}")
            for e in self.schema_errors(path):
                self.fail(path, f"the schema refused it at {where(e)}")
        return len(files)

    def invalid(self):
        files = self.files("invalid")
        for path in files:
            key = expected_key(path)
            code, err = self.check_config(path)
            if code != 1:
                self.fail(path, f"check-config accepted it (exit {code})")
            elif f": {key}: " not in err:
                self.fail(path, f"check-config refused it, but not naming {key}:\n{err}")
            errors = self.schema_errors(path)
            if not errors:
                self.fail(path, "the schema accepted it")
            elif not any(at_or_above(key, e) for e in errors):
                self.fail(path, f"the schema refused it elsewhere than at {key}: " + "; ".join(map(where, errors)))
        return len(files)

    def looser(self):
        files = self.files("looser")
        for path in files:
            key = expected_key(path)
            code, err = self.check_config(path)
            if code != 1 or f": {key}: " not in err:
                self.fail(path, f"check-config should refuse it naming {key} (exit {code}):\n{err}")
            for e in self.schema_errors(path):
                self.fail(path, f"the schema refused it at {where(e)} (stricter than documented: move the "
                                "file to invalid/ and update config/README.md, 'Editors and the JSON Schema')")
        return len(files)

    def meta(self):
        # Valid draft-07: checked in __init__. Here: no dangling $ref, no unused definition.
        schema = self.validator.schema
        refs = set()

        def walk(node):
            if isinstance(node, dict):
                if isinstance(node.get("$ref"), str):
                    refs.add(node["$ref"])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(schema)
        defined = {"#/definitions/" + name for name in schema["definitions"]}
        for ref in sorted(refs - defined):
            self.failures.append(f"$ref {ref} has no definition")
        for ref in sorted(defined - refs):
            self.failures.append(f"definition {ref} is never used")
        return len(defined)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("valid", "invalid", "looser", "meta"):
        raise SystemExit(__doc__)
    case, binary, root = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    checker = Checker(binary, root)
    count = getattr(checker, case)()
    for f in checker.failures:
        print("FAIL:", f, file=sys.stderr)
    what = "definitions" if case == "meta" else "configs"
    print(f"{case}: {count} {what}, {len(checker.failures)} disagreements")
    return 1 if checker.failures or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
