"""The house's size rules, checked on the source tree: no module over 400 lines and no function over
80 lines outside tests and migrations (issue 11). The import rules are import-linter's contracts
(`make imports`); this file keeps the sizes, which a linter does not."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("accounts", "bench", "demo", "dicomweb", "inference", "mritrus_site", "readerstudy")
CHECKED += ("registration", "scripts")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _modules() -> list[Path]:
    found = [ROOT / "manage.py"]
    for top in CHECKED:
        found += [p for p in (ROOT / top).rglob("*.py") if "migrations" not in p.parts]
    return sorted(found)


def test_the_check_sees_the_tree():
    modules = _modules()
    assert len(modules) > 150
    assert ROOT / "registration" / "jobs" / "run.py" in modules


def _offences(path: Path) -> list[str]:
    text = path.read_text()
    where = path.relative_to(ROOT)
    found = []
    lines = text.count("\n")
    if lines > MAX_MODULE_LINES:
        found.append(f"{where}: {lines} lines")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{where}:{node.lineno} {node.name}() {length} lines")
    return found


def test_no_module_over_400_lines_and_no_function_over_80():
    offences = [o for path in _modules() for o in _offences(path)]
    assert not offences, "split these by sub-domain / into named stages:\n" + "\n".join(offences)


def test_the_size_check_can_fail(tmp_path):
    long_function = "def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES
    (tmp_path / "m.py").write_text(long_function + "\n" * MAX_MODULE_LINES)
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        offences = _offences(tmp_path / "m.py")
    finally:
        ROOT = saved
    assert len(offences) == 2
