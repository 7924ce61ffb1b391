"""The house's layout rules (CONTRIBUTING.md), checked on every run: no
import circle between the files of host/src (`./dev circles`), and no
source file there past 1,200 lines."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT

SRC = Path(ROOT) / "host" / "src"
LINES_LIMIT = 1200


def test_no_import_circle_in_host_src():
    done = subprocess.run(
        [sys.executable, str(Path(ROOT) / "tests" / "python" / "circles.py"), str(SRC)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, "import circles in host/src (./dev circles):\n" + done.stdout + done.stderr
    assert "0 import circle(s)" in done.stdout


def test_the_circle_finder_sees_a_circle_and_not_a_test_module(tmp_path):
    # A module's mod.rs and its child naming each other is a circle; the
    # child's inline test module naming the child's own items is not.
    (tmp_path / "a").mkdir()
    (tmp_path / "lib.rs").write_text("mod a;\n")
    (tmp_path / "a" / "mod.rs").write_text("mod b;\npub struct Y;\nuse b::X;\n")
    # (A `//` or a brace inside a string is neither a comment nor a brace.)
    (tmp_path / "a" / "b.rs").write_text(
        "pub struct X;\n#[cfg(test)]\nmod tests {\n    use super::*;\n"
        "    fn f() -> (&'static str, char) { (\"redis://x {\", '}') }\n}\n"
    )
    finder = [sys.executable, str(Path(ROOT) / "tests" / "python" / "circles.py"), str(tmp_path)]
    clean = subprocess.run(finder, capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0, clean.stdout
    (tmp_path / "a" / "b.rs").write_text("pub struct X;\nuse super::Y;\n")
    circle = subprocess.run(finder, capture_output=True, text=True, timeout=60)
    assert circle.returncode == 1
    assert "['a/b.rs', 'a/mod.rs']" in circle.stdout


def test_no_source_file_past_the_limit():
    long = {
        str(p.relative_to(SRC)): n
        for p in sorted(SRC.rglob("*.rs"))
        if (n := len(p.read_text().splitlines())) > LINES_LIMIT
    }
    assert not long, f"files of host/src past {LINES_LIMIT} lines (give their parts rooms of their own): {long}"
