"""Name maps: the user's own torch name -> MindSpore name pairs, for names neither the registry nor the
structure pairs (:mod:`msport.diagnose.pairing` reads them)."""

import json
import os
from collections import OrderedDict

from msport.errors import UserError


class NameMapError(UserError):
    """A name map that cannot be read or that names something the model does not have."""


def load_name_map(path):
    """A name map from a file: JSON ``{"torch name": "mindspore name"}``, or text lines
    ``torch_name mindspore_name`` or, YAML-style, ``torch_name: mindspore_name`` (``#`` comments and blank
    lines skipped)."""
    if not os.path.isfile(path):
        raise NameMapError(f"{path}: no such name-map file")
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise NameMapError(f"{path}: not a text file (a name map is JSON or 'torch_name mindspore_name' "
                           f"lines)") from exc
    if text.lstrip().startswith("{"):
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as exc:
            raise NameMapError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
            raise NameMapError(f"{path}: a name map maps strings to strings (torch name -> MindSpore name)")
        return OrderedDict(mapping)
    mapping = OrderedDict()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) == 2 and parts[0].endswith(":"):  # YAML style
            parts[0] = parts[0][:-1]
        if len(parts) != 2 or not parts[0]:
            raise NameMapError(f"{path}:{number}: expected 'torch_name mindspore_name', found {line!r}")
        mapping[parts[0]] = parts[1]
    return mapping


def map_function(name_map):
    """``torch name -> MindSpore name or None`` from a dict, a callable, a file path or ``None``."""
    if name_map is None:
        return None
    if isinstance(name_map, (str, os.PathLike)):
        name_map = load_name_map(os.fspath(name_map))
    if callable(name_map) and not isinstance(name_map, dict):
        return name_map
    if isinstance(name_map, dict):
        mapping = dict(name_map)
        return mapping.get
    raise NameMapError(f"a name map is a dict, a callable or a file path, not {type(name_map).__name__}")
