"""The import rule: every import of the pack runs downward (loading → interface and the engine's shared modules →
families → methods → nodes and the command line), so a change to one family touches one folder and no method
ever depends on a family."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [  # lowest first: a module may import its own layer or any below
    ("core.loading",),
    ("core.schedule", "core.block_checks", "core.validation", "core.video_io", "core.conditioning",
     "core.memory_estimate", "core.interface", "core.denoiser", "core.memory_options"),
    ("core.families",),
    ("core.methods",),
    ("nodes", "cli", "testing"),
]


def _layer(module: str) -> int | None:
    for level, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    return None


def _imports(path: Path) -> list[str]:
    """The pack's modules ``path`` imports (relative imports resolved)."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    package = package.removesuffix(".__init__")
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            found += [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]
    return found


def _modules(*folders):
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


@pytest.mark.parametrize("path", _modules("core", "nodes", "cli", "testing"), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_import_runs_downward(path):
    own = _layer(".".join(path.relative_to(ROOT).with_suffix("").parts))
    for target in _imports(path):
        layer = _layer(target)
        assert own is None or layer is None or layer <= own, f"{path.relative_to(ROOT)} imports {target}, a higher layer"


def test_no_method_imports_a_family():
    """Methods ask the interface; a method importing a family module is the probing this layout removed."""
    offenders = [(p.name, t) for p in _modules("core/methods") for t in _imports(p) if t.startswith("core.families")]
    assert offenders == []


def test_a_method_importing_a_family_is_caught(tmp_path):
    """The check itself can fail: a method module that imports a family module is flagged."""
    fake = ROOT / "core" / "methods" / "_probe_layers.py"
    fake.write_text("from ..families.wan import backbone\n")
    try:
        assert any(t.startswith("core.families") for t in _imports(fake))
        with pytest.raises(AssertionError):
            test_no_method_imports_a_family()
    finally:
        fake.unlink()


def test_nothing_outside_a_family_names_one():
    """Methods, nodes and the command line branch on no family name (they ask the interface)."""
    names = ("\"wan\"", "'wan'", "\"modelscope\"", "'modelscope'", "\"animatediff\"", "'animatediff'")
    for path in _modules("core/methods", "nodes", "cli"):
        text = path.read_text()
        assert not any(f"== {n}" in text or f"!= {n}" in text or f"in ({n}" in text for n in names), path
