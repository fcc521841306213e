"""Text that goes into a plot: shown as written, never parsed as mathtext."""

from __future__ import annotations


def literal(text: object) -> str:
    """``text`` as matplotlib shows it literally.

    Matplotlib reads anything between two ``$`` as mathtext, and fails on what it does not know
    (a label such as ``$\\foo$``); with every ``$`` escaped there is no math mode, and the other
    characters (backslashes included) are drawn as they are.
    """
    return str(text).replace("$", r"\$")
