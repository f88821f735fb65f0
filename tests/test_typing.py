"""mypy over tracking, tasks and flows with pyproject.toml's [tool.mypy] strictness: this test is
how the README's `python -m pytest` (and so CI) type-checks the code."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
# One cache per checkout, kept between runs: a rerun checks only what changed.
CACHE = Path(tempfile.gettempdir()) / (
    "trackflow-mypy-" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
)


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(PYPROJECT),
            "--cache-dir",
            str(CACHE),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_packages_type_check_clean() -> None:
    done = _mypy()
    assert done.returncode == 0, f"mypy found type errors:\n{done.stdout}{done.stderr}"
    assert "Success: no issues found" in done.stdout


def test_configuration_states_its_strictness_and_ignores_imports_only_by_name() -> None:
    mypy = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["mypy"]
    assert mypy["files"] == ["tracking", "tasks", "flows"]
    for flag in (
        "check_untyped_defs",
        "disallow_untyped_defs",
        "disallow_incomplete_defs",
        "warn_unused_ignores",
        "warn_redundant_casts",
        "no_implicit_optional",
        "strict_equality",
    ):
        assert mypy[flag] is True, flag
    assert "ignore_missing_imports" not in mypy  # never for every import
    for override in mypy.get("overrides", []):
        assert override["module"], override
        assert all(m and m != "*" for m in override["module"]), override


def test_an_ill_typed_module_fails_the_check(tmp_path: Path) -> None:
    bad = tmp_path / "ill_typed.py"
    bad.write_text(
        "def untyped(x):\n"
        "    return x\n"
        "\n"
        "\n"
        "count: int = 'three'\n"
        "ignored: int = 1  # type: ignore[assignment]\n",
        encoding="utf-8",
    )
    done = _mypy(str(bad))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[no-untyped-def]" in done.stdout
    assert "[assignment]" in done.stdout
    assert "[unused-ignore]" in done.stdout
