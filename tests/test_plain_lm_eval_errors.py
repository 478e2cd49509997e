"""A plain ``lm_eval run`` with a configuration error in xdet: one ``xdet: ...`` line, exit status 2, no
traceback and no generation (lm-eval builds the model first, then loads the tasks)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from xdet_tasks import TASK_DIR

CASES = {
    "unknown scorer": ({"XDET_SCORER": "bert"}, "xdet: scorer 'bert' (XDET_SCORER or --scorer): unknown scorer backend 'bert'"),
    "missing data directory": ({"XDET_DATA_DIR": "/nonexistent/splits", "XDET_SCORER": "local"},
                               "xdet: data directory '/nonexistent/splits' (from XDET_DATA_DIR) does not exist"),
    "Perspective without a key": ({"XDET_SCORER": "perspective"}, "xdet: the perspective scorer needs an API key"),
    "default scorer offline": ({"XDET_SCORER": None, "HF_HUB_OFFLINE": "1"},
                               "xdet: scorer 'textdetox' (textdetox/xlmr-large-toxicity-classifier-v2) cannot be "
                               "loaded"),
    "a language the scorer does not cover": ({"XDET_SCORER": "perspective", "PERSPECTIVE_API_KEY": "k-not-real"},
                                             "xdet: Perspective does not support TOXICITY in language 'am'"),
}
TASK = {"a language the scorer does not cover": "xdet_toxic_test_am"}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_configuration_error_is_the_first_thing_shown(case, tiny_model, data_dir):
    env_overrides, message = CASES[case]
    env = {k: v for k, v in os.environ.items() if k != "PERSPECTIVE_API_KEY"}
    env |= {"XDET_DATA_DIR": str(data_dir), **env_overrides}
    env = {k: v for k, v in env.items() if v is not None}  # None: unset it
    task = TASK.get(case, "xdet_toxic_test_de")
    cmd = [sys.executable, "-m", "lm_eval", "run", "--include_path", str(TASK_DIR), "--tasks", task,
           "--model", "hf", "--model_args", f"pretrained={tiny_model('llama')}", "--limit", "2", "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert message in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert [line for line in out.splitlines() if "xdet:" in line] == [out[out.index(message):].splitlines()[0]]
    assert "generate_until requests" not in out, "the error must come before any generation"
