#!/usr/bin/env python3
"""scripts/check-layers.py on small made-up trees: it must fail, naming FILE:LINE, on every
kind of use the table forbids, and pass on trees that only use what it allows."""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "check-layers.py")

TABLE = """\
# a comment line
base     daemon/base                : -
api      daemon/api                 : base
yaml     config/yaml                : base
config   config                     : yaml api base
coming   daemon/coming              : api
cli      daemon/cli,daemon/main.cpp : *
"""


class CheckLayers(unittest.TestCase):
    def tree(self, files, table=TABLE):
        root = tempfile.mkdtemp(prefix="layers-")
        self.addCleanup(shutil.rmtree, root)
        files = dict(files)
        files["docs/layers.txt"] = table
        for path, text in files.items():
            full = os.path.join(root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as f:
                f.write(textwrap.dedent(text))
        return root

    def run_check(self, root):
        done = subprocess.run([sys.executable, SCRIPT, root], capture_output=True, text=True)
        return done.returncode, done.stdout + done.stderr

    def test_allowed_uses_pass_and_absent_folders_are_fine(self):
        root = self.tree({
            "daemon/base/text.hpp": "#pragma once\n",
            "daemon/api/schema.hpp": '#include "daemon/base/text.hpp"\n#include <vector>\n#include "schema_detail.hpp"\n',
            "daemon/api/schema_detail.hpp": "#pragma once\n",
            "daemon/cli/main_cli.cpp": '#include "config/config.hpp"\n#include "daemon/api/schema.hpp"\n',
            "daemon/main.cpp": '#include "daemon/cli/main_cli.cpp"\n',
            "config/config.hpp": '#include "config/yaml/reader.hpp"\n#include "some/vendored.h"\n',
            "config/yaml/reader.hpp": '#include "daemon/base/text.hpp"\n',
            "tests/unit/anything_test.cpp": '#include "daemon/cli/main_cli.cpp"\n',
        })
        code, out = self.run_check(root)
        self.assertEqual(code, 0, out)
        self.assertIn("ok", out)

    def test_a_forbidden_include_is_named_with_file_line_and_the_allowed_modules(self):
        root = self.tree({
            "daemon/base/text.hpp": "#pragma once\n\n  #  include \"daemon/api/schema.hpp\"\n",
            "daemon/api/schema.hpp": "#pragma once\n",
        })
        code, out = self.run_check(root)
        self.assertEqual(code, 1, out)
        self.assertIn('daemon/base/text.hpp:3: base includes "daemon/api/schema.hpp" (api); base may use: nothing', out)

    def test_the_longest_folder_decides_the_module(self):
        root = self.tree({
            "config/config.hpp": "#pragma once\n",
            "config/yaml/reader.hpp": '#pragma once\n#include "config/config.hpp"\n',
        })
        code, out = self.run_check(root)
        self.assertEqual(code, 1, out)
        self.assertIn('config/yaml/reader.hpp:2: yaml includes "config/config.hpp" (config); yaml may use: base', out)

    def test_includes_relative_to_the_file_are_resolved(self):
        root = self.tree({
            "daemon/api/schema.hpp": "#pragma once\n",
            "daemon/base/text.hpp": '#include "../api/schema.hpp"\n',
        })
        code, out = self.run_check(root)
        self.assertEqual(code, 1, out)
        self.assertIn('daemon/base/text.hpp:1: base includes "../api/schema.hpp" (api)', out)

    def test_a_source_in_no_module_and_an_include_of_test_code_fail(self):
        root = self.tree({
            "daemon/newthing/x.cpp": "int x;\n",
            "daemon/api/schema.cpp": '#include "tests/support/fake.hpp"\n',
            "tests/support/fake.hpp": "#pragma once\n",
        })
        code, out = self.run_check(root)
        self.assertEqual(code, 1, out)
        self.assertIn("daemon/newthing/x.cpp: in no module of docs/layers.txt", out)
        self.assertIn('daemon/api/schema.cpp:1: api includes "tests/support/fake.hpp", which is in no module', out)

    def test_a_forbidden_library_link_is_named_with_its_cmake_line(self):
        root = self.tree({
            "daemon/base/CMakeLists.txt": "add_library(prefsync_base STATIC text.cpp)\n",
            "daemon/api/CMakeLists.txt": "add_library(prefsync_api STATIC schema.cpp)\n"
                                         "target_link_libraries(prefsync_api PUBLIC prefsync_base)\n",
            "config/CMakeLists.txt": "add_library(prefsync_config STATIC c.cpp)\n"
                                     "# prefsync_cli in a comment is no link\n"
                                     "target_link_libraries(prefsync_config PUBLIC prefsync_api\n"
                                     "                      prefsync_coming yaml-cpp)\n",
            "daemon/coming/CMakeLists.txt": "add_library(prefsync_coming STATIC x.cpp)\n",
        })
        code, out = self.run_check(root)
        self.assertEqual(code, 1, out)
        self.assertIn("config/CMakeLists.txt:4: prefsync_config (config) links prefsync_coming (coming); "
                      "config may use: yaml api base", out)
        self.assertEqual(out.count(" links prefsync_"), 1, out)

    def test_a_table_naming_an_unknown_module_is_refused(self):
        root = self.tree({}, table="base daemon/base : -\napi daemon/api : bse\n")
        code, out = self.run_check(root)
        self.assertEqual(code, 2, out)
        self.assertIn('docs/layers.txt:2: api may use "bse", which is no module', out)


if __name__ == "__main__":
    unittest.main()
