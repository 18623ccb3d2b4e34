"""Run a real anvil node (from the npm package installed into the tools folder)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

DEVNET_CHAIN_ID = 31337
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"


class AnvilError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_anvil(configured: str = "") -> str:
    """The anvil binary: the configured path (MEV_ANVIL_BIN / tools folder), else one on PATH."""
    if configured and Path(configured).is_file() and os.access(configured, os.X_OK):
        return configured
    on_path = shutil.which("anvil")
    if on_path:
        return on_path
    raise AnvilError(
        f"anvil not found at {configured or '(unset)'} nor on PATH; run `make setup` "
        "(installs @foundry-rs/anvil-linux-amd64 into tools/) or set MEV_ANVIL_BIN"
    )


@dataclass
class AnvilNode:
    """A running anvil process on loopback. Use as a context manager or call ``stop()``."""

    binary: str
    port: int = 0
    block_time: float | None = 12
    accounts: int = 20
    balance_eth: int = 1_000_000
    chain_id: int = DEVNET_CHAIN_ID
    state_path: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    log_path: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            self.binary,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--hardfork", "prague",
            "--order", "fees",
            "--accounts", str(self.accounts),
            "--balance", str(self.balance_eth),
            "--mnemonic", DEFAULT_MNEMONIC,
        ]
        if self.block_time:
            cmd += ["--block-time", str(self.block_time)]
        if self.state_path is not None:
            cmd += ["--state", str(self.state_path)]
        return cmd + list(self.extra_args)

    def start(self, timeout: float = 30.0) -> "AnvilNode":
        if not self.port:
            self.port = free_port()
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            self.command(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AnvilError(f"anvil exited with code {self.process.returncode} on port {self.port}")
            try:
                self.rpc("eth_chainId")
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AnvilError(f"anvil did not answer on port {self.port} within {timeout} s")

    def rpc(self, method: str, params: list | None = None, timeout: float = 10.0):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
        req = urllib.request.Request(self.http_url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer = json.loads(resp.read())
        if "error" in answer:
            raise AnvilError(f"{method}: {answer['error']}")
        return answer["result"]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop anvil (SIGTERM lets it dump ``--state``; SIGKILL simulates a crash)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def __enter__(self) -> "AnvilNode":
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
