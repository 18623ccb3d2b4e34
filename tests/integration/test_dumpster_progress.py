"""The import's progress bar on a terminal: `mev-assets import mempool-dumpster` run on a
pseudo-terminal, as a user's shell runs it. The pty has no window size (0 x 0, as under `script`,
CI runners or `docker exec -t`), where tqdm by itself draws nothing."""

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_dumpster_import import dumpster_row, rpc_objects, write_parquet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CLI = str(Path(sys.executable).with_name("mev-assets"))


def run_on_pty(argv: list[str], env: dict[str, str]) -> str:
    """Everything the command wrote to its terminal (stdout and stderr share it)."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(argv, stdin=terminal, stdout=terminal, stderr=terminal, env=env, close_fds=True)
    os.close(terminal)
    out = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the command exited and closed its side
            break
        if not chunk:
            break
        out += chunk
    os.close(controller)
    assert proc.wait(timeout=60) == 0, out.decode(errors="replace")
    return out.decode(errors="replace")


@pytest.mark.parametrize("flag", [None, "--no-progress"])
def test_progress_bar_draws_on_a_terminal_unless_disabled(tmp_path, flag):
    day = write_parquet(tmp_path / "2024-05-01.parquet",
                        [dumpster_row(o, 1_714_608_000_000 + i * 10, ["local"]) for i, o in enumerate(rpc_objects())])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEV_", "TQDM_"))}
    env.update(MEV_HOME=str(tmp_path / "mev_home"), MEV_STORAGE="local")
    out = run_on_pty([CLI, "import", "mempool-dumpster", *([flag] if flag else []), str(day)], env)
    assert "89 accepted" in out
    # the bar's frames: file name, percentage, rows of the file (a fast import may show only the first)
    if flag:
        assert "2024-05-01.parquet:" not in out and "rows/s" not in out
    else:
        assert "\r2024-05-01.parquet:   0%|" in out and "/89.0 [" in out and "rows/s" in out
