"""``python -m msport.registry``: rewrite the generated table in docs/layers.md."""

import pathlib

from msport.registry.docs import DOCS_PAGE, write_docs_page

if __name__ == "__main__":
    print(f"wrote {write_docs_page(pathlib.Path(__file__).resolve().parents[2] / DOCS_PAGE)}")
