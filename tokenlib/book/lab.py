"""JupyterLab settings for ``make lab`` and its browser test.

``python -m tokenlib.book.lab settings`` prints the ``overrides.json`` that makes JupyterLab open the
MyST Markdown chapters as notebooks (jupytext's "Jupytext Notebook" viewer, from the lock) instead of
as text. ``make lab`` writes it into the virtual environment (``.venv/share/jupyter/lab/settings``), so
neither the repository nor the user's own JupyterLab settings change.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

#: jupytext's notebook view (jupyterlab-jupytext); JupyterLab uses it for .md files with these settings.
JUPYTEXT_FACTORY = "Jupytext Notebook"


def overrides() -> dict[str, Any]:
    return {
        "@jupyterlab/docmanager-extension:plugin": {
            "defaultViewers": {"markdown": JUPYTEXT_FACTORY, "myst": JUPYTEXT_FACTORY},
            # running cells changes outputs, which a .md does not keep: autosaving would only rewrite
            # the chapter's front matter (jupytext adds its version). Save with Ctrl-S to keep an edit.
            "autosave": False,
        },
        # start the kernel the chapter names (python3) without asking
        "@jupyterlab/notebook-extension:tracker": {"autoStartDefaultKernel": True},
        # no "news" prompt: JupyterLab would offer to fetch announcements from the internet
        "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["settings"]:
        print("usage: python -m tokenlib.book.lab settings", file=sys.stderr)
        return 2
    print(json.dumps(overrides(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
