"""The import layering of msport (docs/architecture.md): a module imports only from its own layer or below.

Function-level imports count: each import cycle this project had closed through one. The test reads the
source (an AST walk), so it imports nothing and runs in milliseconds.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: Lowest first. A module belongs to the first layer one of whose prefixes it starts with.
LAYERS = (
    ("base", ("msport.errors", "msport.files", "msport.tolerances", "msport.progress", "msport._mindspore",
              "msport.environment", "msport.specs", "msport.numeric")),
    ("registry", ("msport.registry",)),
    ("cells", ("msport.cells",)),
    ("layers, conversion, checkpoint files, optimizers, data", ("msport.layers", "msport.convert", "msport.checkpoints",
                                                               "msport.optim", "msport.data")),
    ("zoos", ("msport.models", "reference_torch")),
    ("diagnose", ("msport.diagnose",)),
    ("port", ("msport.port",)),
    ("resolve", ("msport.resolve",)),
    ("training", ("msport.training",)),
    ("reproduce", ("msport.reproduce",)),
    ("commands", ("msport.commands", "msport.cli", "msport.__main__", "train_torch", "train_ms")),
)


def layer_of(module):
    if module == "msport":  # the package itself: its version, nothing else
        return 0
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path):
    """``(line, imported module)`` for every import statement in the file, at any depth."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # from msport import registry: the submodule is the edge
                yield node.lineno, f"{base}.{alias.name}" if base == "msport" else base


def sources():
    return sorted([*ROOT.joinpath("msport").rglob("*.py"), *ROOT.joinpath("reference_torch").rglob("*.py"),
                   ROOT / "train_torch.py", ROOT / "train_ms.py"])


def upward_edges(files):
    found = []
    for path in files:
        own = layer_of(module_name(path))
        assert own is not None, f"{module_name(path)} is in no layer: add it to LAYERS (and docs/architecture.md)"
        for line, target in imports(path):
            rank = layer_of(target)
            if rank is not None and rank > own:
                found.append(f"{path.relative_to(ROOT)}:{line} ({LAYERS[own][0]}) imports {target} ({LAYERS[rank][0]})")
    return found


def test_no_module_imports_from_a_layer_above_its_own():
    edges = upward_edges(sources())
    assert not edges, "imports pointing up the layering:\n" + "\n".join(edges)


def test_a_planted_upward_import_is_caught(tmp_path, monkeypatch):
    planted = ROOT / "msport" / "registry" / "lookup.py"
    copy = tmp_path / "msport" / "registry" / "lookup.py"
    copy.parent.mkdir(parents=True)
    copy.write_text(planted.read_text() + "\n\ndef _late():\n    from msport.port.build import port\n    return port\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    edges = upward_edges([copy])
    assert len(edges) == 1 and "imports msport.port.build (port)" in edges[0], edges


@pytest.mark.parametrize("layer", [name for name, _ in LAYERS])
def test_every_layer_is_named_in_the_architecture_page(layer):
    assert layer in (ROOT / "docs" / "architecture.md").read_text()
