"""What the peer-suite scripts (prefect_suite.py, mlflow_suite.py) share: git, extracting a
project's test modules with what they import, a virtual environment for its pytest plugins,
and reading pytest's JUnit results."""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
import tomllib
import venv
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def git(*args: str, git_dir: Path | None = None) -> str:
    """The output of a git command; SystemExit with git's message if it fails."""
    prefix = ["git", f"--git-dir={git_dir}"] if git_dir else ["git"]
    done = subprocess.run([*prefix, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def imported_modules(path: str, source: str) -> set[str]:
    """Every module a file imports, anywhere in it, relative imports resolved; for
    `from a import b` both `a` and `a.b` (b may be a module)."""
    package = path.removesuffix(".py").replace("/", ".").rsplit(".", 1)[0]
    if path.endswith("__init__.py"):
        package = path.removesuffix("/__init__.py").replace("/", ".")
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def extract(git_dir: Path, revision: str, dest: Path, roots: Iterable[str]) -> None:
    """Write the files under tests/ that `roots` need (transitively, those of `roots` the
    revision has) under `dest`, with the project's pyproject.toml (its pytest settings)."""
    marker = dest / ".extracted"
    if marker.exists():
        return
    listing = git("ls-tree", "-r", "--name-only", revision, "--", "tests", git_dir=git_dir)
    tree = set(listing.split())
    wanted: set[str] = set()
    queue = [root for root in roots if root in tree]
    while queue:
        path = queue.pop()
        if path in wanted:
            continue
        wanted.add(path)
        text = git("show", f"{revision}:{path}", git_dir=git_dir)
        for module in imported_modules(path, text):
            stem = module.replace(".", "/")
            for candidate in (f"{stem}.py", f"{stem}/__init__.py"):
                if candidate in tree:
                    queue.append(candidate)
                    parents = Path(candidate).parents
                    queue += [f"{p}/__init__.py" for p in parents if f"{p}/__init__.py" in tree]
    for path in sorted(wanted | {"pyproject.toml"}):
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(git("show", f"{revision}:{path}", git_dir=git_dir))
    marker.write_text("\n".join(sorted(wanted)) + "\n")
    print(f"extracted {len(wanted)} files into {dest}")


def environment(cache: Path, extra: str) -> Path:
    """A virtual environment in `cache` with this interpreter's packages (pinned) plus our
    optional-dependency group `extra`; its python."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = extras["optional-dependencies"][extra]
    env_dir = cache / "venv"
    python = env_dir / "bin" / "python"
    marker = env_dir / ".peers"
    stamp = hashlib.sha256("\n".join([sys.version, *requirements]).encode()).hexdigest()
    if marker.exists() and marker.read_text() == stamp:
        return python
    venv.create(env_dir, system_site_packages=True, with_pip=True, clear=True)
    pins = cache / "constraints.txt"
    pins.write_text(
        "".join(f"{d.metadata['Name']}=={d.version}\n" for d in metadata.distributions())
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-c", str(pins), *requirements], check=True
    )
    marker.write_text(stamp)
    return python


def outcomes(junit: Path) -> dict[str, str]:
    """{test id: passed | failed | error | skipped} from pytest's JUnit XML."""
    results = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        if "error" in kinds:
            results[test] = "error"
        elif "failure" in kinds:
            results[test] = "failed"
        elif "skipped" in kinds:
            results[test] = "skipped"
        else:
            results[test] = "passed"
    return results
