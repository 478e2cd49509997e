"""Every output file goes through one atomic-write helper (``xdet_tasks.io``): a source audit.

A direct write anywhere else in the packages fails this test unless it is listed below, call site
by call site, with why it is safe. The audit knows the forms a write takes in this code base:
``write_text``/``write_bytes``, ``open(.., "w")`` and ``Path.open("w")``, ``savefig``, ``to_csv``,
``save_pretrained``, ``json/pickle/yaml.dump`` to a stream, ``numpy.save*``, ``torch.save``,
``shutil``'s copies and moves, and ``os.write``/``os.pwrite`` on a descriptor.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("xdet", "xdet_tasks", "xdet_train")
#: The helper itself.
HELPER = "xdet_tasks/io.py"
#: (file, enclosing function, call) -> why this direct write is safe.
ALLOWED = {
    ("xdet/figures.py", "png_bytes", "savefig"): "renders into an in-memory buffer",
    ("xdet_train/train.py", "train_adapter", "save_pretrained"): "saves into a temp folder renamed over the adapter",
    ("xdet/demo/toy.py", "_pretrain", "save_pretrained"): "saves into toy_model's staged folder, renamed into place",
    ("xdet_train/tiny.py", "save_tiny_model", "save_pretrained"): "test/demo helper; callers save to a temp folder",
    ("xdet_train/tiny_chat.py", "save_tiny_chat_model", "save_pretrained"): "test/benchmark helper; callers save to a temp folder",
    ("xdet/claims.py", "_write", "os.pwrite"): "a claim is rewritten in place under the flock its file carries; "
                                              "one cut short by a crash does not parse and counts as no claim",
    ("xdet_tasks/scoring/cache_segments.py", "put_many", "os.write"): "appends whole lines to this process's own "
                                                                      "segment; readers take complete lines only",
}
_METHODS = {"write_text", "write_bytes", "savefig", "to_csv", "save_pretrained", "save_model"}
_MODULE_CALLS = {
    "np": {"save", "savez", "savez_compressed", "savetxt"},
    "numpy": {"save", "savez", "savez_compressed", "savetxt"},
    "torch": {"save"},
    "shutil": {"copy", "copy2", "copyfile", "copytree", "move"},
    "os": {"write", "pwrite"},
}


def _writes_mode(node: ast.Call, position: int) -> bool:
    modes = [a.value for a in node.args[position:position + 1] if isinstance(a, ast.Constant)]
    modes += [k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)]
    return any(isinstance(m, str) and set(m) & set("wax+") for m in modes)


def _call_kind(node: ast.Call) -> str | None:
    f = node.func
    if isinstance(f, ast.Name) and f.id == "open" and _writes_mode(node, 1):
        return "open"
    if not isinstance(f, ast.Attribute):
        return None
    if f.attr == "open" and _writes_mode(node, 0):  # Path.open("w")
        return "open"
    if f.attr in _METHODS:
        return f.attr
    if f.attr == "dump" and (len(node.args) > 1 or any(k.arg in ("fp", "stream", "file") for k in node.keywords)):
        return "dump"  # json/pickle/yaml.dump to a stream (dumps to a string is fine)
    if isinstance(f.value, ast.Name) and f.attr in _MODULE_CALLS.get(f.value.id, ()):
        return f"{f.value.id}.{f.attr}"
    return None


def write_sites(source: str) -> list[tuple[str, int, str]]:
    """``(enclosing function, line, call)`` of every direct file write in a module's source."""
    sites: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else func
            if isinstance(child, ast.Call) and (kind := _call_kind(child)):
                sites.append((func, child.lineno, kind))
            visit(child, name)

    visit(ast.parse(source), "<module>")
    return sites


def test_every_direct_file_write_is_atomic_or_justified():
    found: dict[tuple[str, str, str], list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == HELPER:
                continue
            for func, line, kind in write_sites(path.read_text(encoding="utf-8")):
                found.setdefault((rel, func, kind), []).append(f"{rel}:{line} {kind} in {func}")
    unjustified = [site for key, sites in found.items() if key not in ALLOWED for site in sites]
    assert not unjustified, "non-atomic writes (use xdet_tasks.io or justify them in ALLOWED): " + ", ".join(unjustified)
    stale = [key for key in ALLOWED if key not in found]
    assert not stale, f"allowed sites that no longer exist (remove them): {stale}"


@pytest.mark.parametrize("source, kind", [
    ("def f(p):\n    with p.open('w') as fh:\n        fh.write('x')\n", "open"),
    ("def f(p):\n    with open(p, mode='a') as fh:\n        pass\n", "open"),
    ("import numpy as np\ndef f(p, a):\n    np.save(p, a)\n", "np.save"),
    ("import shutil\ndef f(a, b):\n    shutil.copyfile(a, b)\n", "shutil.copyfile"),
    ("import json\ndef f(obj, fh):\n    json.dump(obj, fh)\n", "dump"),
    ("def f(p):\n    p.write_text('x')\n", "write_text"),
])
def test_the_audit_sees_each_form_of_write(source, kind):
    assert write_sites(source) == [("f", write_sites(source)[0][1], kind)]


@pytest.mark.parametrize("source", [
    "def f(p):\n    with p.open() as fh:\n        return fh.read()\n",
    "def f(p):\n    with open(p, 'rb') as fh:\n        return fh.read()\n",
    "import json\ndef f(obj):\n    return json.dumps(obj)\n",
    "def f(d):\n    return d.copy()\n",
])
def test_reads_are_not_writes(source):
    assert write_sites(source) == []


def test_written_files_and_folders_get_the_users_permissions(tmp_path):
    """Temp files start owner-only; what we publish must look like any file the user makes."""
    import os
    import stat

    from xdet_tasks.io import atomic_write_text, staged_dir

    mask = os.umask(0)
    os.umask(mask)
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    written = atomic_write_text(tmp_path / "written.txt", "x")
    with staged_dir(tmp_path / "folder") as stage:
        (stage / "f").write_text("x")
    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o777 & ~mask
