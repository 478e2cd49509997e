"""Whether the Hugging Face hub can be reached, decided in milliseconds instead of after retries.

A run that needs the hub (a hub model id, the hub dataset, a scorer preset) first uses a cached
copy when there is one; only when it must download does it ask :func:`unreachable`, so an offline
machine gets one clear line at once rather than minutes of retry warnings and a traceback.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from xdet_tasks.io import env_flag


def unreachable(*offline_vars: str) -> str | None:
    """Why the hub cannot be reached (offline mode set, its host does not resolve), or ``None``.

    ``HF_HUB_OFFLINE`` always counts; a library's own switch (``TRANSFORMERS_OFFLINE``,
    ``HF_DATASETS_OFFLINE``) counts where the caller names it.
    """
    for var in ("HF_HUB_OFFLINE", *offline_vars):
        if env_flag(var):
            return f"{var} is set"
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # a proxy resolves the host for us: let the real request decide
    host = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return f"{host} cannot be resolved (no network)"
    return None
