"""Services meet only in `shared/`: no module under services/<name>/ imports another service.

services/cli.py, the top-level wiring, is the one place that may import them all. Every import is found, at
module level or inside a function (the lazy ones), relative imports resolved against the module's package.
"""

from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"


def imported_modules(source: str, module: str) -> set[str]:
    """Every module name an import statement in `source` (the text of `module`) names."""
    package = module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)  # `from services import scoring`
    return found


def crossings(service: str, source: str, module: str) -> list[str]:
    """The other services' modules `source` imports."""
    others = {p.name for p in SERVICES.iterdir() if p.is_dir() and (p / "__init__.py").exists()} - {service}
    return sorted(
        name
        for name in imported_modules(source, module)
        if name.split(".")[0] == "services" and len(name.split(".")) > 1 and name.split(".")[1] in others
    )


def test_no_service_imports_another_service():
    offenders = []
    for package in sorted(p for p in SERVICES.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        for path in sorted(package.rglob("*.py")):
            module = ".".join(path.relative_to(SERVICES.parent).with_suffix("").parts)
            offenders += [
                f"{module} imports {name}" for name in crossings(package.name, path.read_text(encoding="utf-8"), module)
            ]
    assert offenders == []


def test_the_check_sees_module_level_lazy_and_relative_imports_of_another_service():
    source = (
        "import services.ingest.poll\n"
        "def f():\n    from services.ingest.observation import Accepted\n"
        "from ..ingest import publish\n"
        "from services import ingest\n"
        "from services.scoring import engine\n"
        "from shared.events import SIGNALS\n"
    )
    assert crossings("scoring", source, "services.scoring.backtest") == [
        "services.ingest",
        "services.ingest.observation",
        "services.ingest.observation.Accepted",
        "services.ingest.poll",
        "services.ingest.publish",
    ]
