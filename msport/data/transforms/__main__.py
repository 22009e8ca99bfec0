"""python -m msport.data.transforms: rewrite docs/data.md's correspondence and proof tables."""

import pathlib

from .docs import DOCS_PAGE, correspondence_table, proof_table, rewrite

page = pathlib.Path(__file__).resolve().parents[3] / DOCS_PAGE
page.write_text(rewrite(page.read_text(), {"correspondence": correspondence_table(), "proof": proof_table()}))
print(f"wrote {page}")
