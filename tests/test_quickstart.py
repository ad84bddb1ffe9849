"""The quickstart notebook (docs/quickstart.ipynb) runs top to bottom in a real kernel, and its outputs hold what a
reader should see: the explanation's viewer as HTML and the figures as images."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "quickstart.ipynb"


def test_quickstart_notebook_runs_and_shows_the_viewer():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # committed clean
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    html = [output.data["text/html"] for output in outputs if "text/html" in output.get("data", {})]
    assert len(html) == 1 and html[0].startswith("<iframe") and "srcdoc=" in html[0] and "heatmap" in html[0]
    assert sum("image/png" in output.get("data", {}) for output in outputs) == 2  # the word's map, the comparison
