"""``python -m xdet_tasks [paper|natural]`` prints the plugin folder to pass to ``lm_eval --include_path``:
the paper's benchmark (default) or the natural-prompt suites (RTP-LX, PTP)."""

import sys

from xdet_tasks import PLUGINS

args = sys.argv[1:]
if args in (["-h"], ["--help"]):
    print(__doc__)
    sys.exit(0)
if len(args) > 1 or (args and args[0] not in PLUGINS):
    print(f"usage: python -m xdet_tasks [{'|'.join(PLUGINS)}]", file=sys.stderr)
    sys.exit(2)
print(PLUGINS[args[0] if args else "paper"])
