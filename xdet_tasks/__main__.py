"""``python -m xdet_tasks [paper|natural]`` prints the plugin folder to pass to ``lm_eval --include_path``:
the paper's benchmark (default) or the natural-prompt suites (RTP-LX, PTP)."""

import argparse

from xdet_tasks import PLUGINS

parser = argparse.ArgumentParser(prog="python -m xdet_tasks", description=__doc__)
parser.add_argument("plugin", nargs="?", choices=PLUGINS, default="paper", metavar="|".join(PLUGINS),
                    help="which plugin folder (default: %(default)s)")
print(PLUGINS[parser.parse_args().plugin])
