"""The documentation table of docs/layers.md, generated from the entries.

``python -m msport.registry`` rewrites it; a test fails when the page and the table differ.
"""

from msport.registry.schema import (_embedding_normal, _embedding_normal_001, _normal_001, _ones, _prelu_init,
                                    _uniform_fan_in, _uniform_hidden, _xavier_uniform, _zeros)
from msport.registry.table import ENTRIES

_INIT_TEXT = {
    _uniform_fan_in: "U(-b, b), b = 1/sqrt(fan_in)", _ones: "1", _zeros: "0", _normal_001: "N(0, 0.01^2)",
    _embedding_normal: "N(0, 1), padding_idx row 0", _embedding_normal_001: "N(0, 0.01^2), padding_idx row 0",
    _uniform_hidden: "U(-b, b), b = 1/sqrt(hidden_size)", _xavier_uniform: "xavier-uniform",
    _prelu_init: "init (0.25)",
}


def markdown_table():
    """The per-layer table of docs/layers.md, generated from the entries (a test keeps the file equal)."""
    rows = ["| torch.nn | mindspore.nn | parameters (torch -> MindSpore) | torch's initial values | "
            "MindSpore's differing default (legacy = 1.x) | notes |",
            "| --- | --- | --- | --- | --- | --- |"]
    for e in ENTRIES:
        params = [p for p in e.params if not p.init_only]
        names = ", ".join(
            (p.torch.replace("|", "\\|") if p.pattern else (p.torch if p.torch == p.ms else f"{p.torch} -> {p.ms}"))
            + (" (reshaped: (out, in, k) <-> (out, in, 1, k))" if p.layout == "unsqueeze2" else "")
            for p in params) or "none"
        label = (lambda p: p.torch.replace("|", "\\|"))
        inits = ", ".join(f"{label(p)}: {_INIT_TEXT[p.init]}" for p in e.params) or "-"
        differing = ", ".join(
            f"{label(p)}: "
            + " / ".join(f"{scheme} {_INIT_TEXT[p.init_for(scheme)]}" for scheme in ("legacy", "mindspore")
                         if p.init_for(scheme) is not p.init)
            for p in e.params if p.init_for("legacy") is not p.init or p.init_for("mindspore") is not p.init) or "-"
        rows.append(f"| {e.name} | {e.ms_class} | {names} | {inits} | {differing} | {e.doc or '-'} |")
    return "\n".join(rows) + "\n"


DOCS_PAGE = "docs/layers.md"
_BEGIN, _END = "<!-- registry table: begin -->", "<!-- registry table: end -->"


def docs_table_section(text):
    """The generated part of docs/layers.md."""
    return text[text.index(_BEGIN) + len(_BEGIN):text.index(_END)].strip("\n") + "\n"


def write_docs_page(page):
    """Rewrite the generated part of ``page`` (docs/layers.md) from the entries; returns the path."""
    text = page.read_text()
    head, tail = text[:text.index(_BEGIN) + len(_BEGIN)], text[text.index(_END):]
    page.write_text(f"{head}\n{markdown_table()}{tail}")
    return page
