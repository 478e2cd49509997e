"""Figures become bytes here, and only here: every picture is then written with the atomic-write helper."""

from __future__ import annotations

import io
from typing import Any


def png_bytes(fig: Any, dpi: int = 100, **savefig: Any) -> bytes:
    """``fig`` rendered as PNG into memory (a ``matplotlib.figure.Figure``, or a pyplot figure, then closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, **savefig)
    if getattr(fig, "number", None) is not None:  # pyplot keeps its figures alive until closed
        import matplotlib.pyplot as plt

        plt.close(fig)
    return buf.getvalue()
