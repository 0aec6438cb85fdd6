"""Starts the real broker stack (tests/broker-stack-fixture.ts, under the repository's Node.js) for a test."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


class BrokerStack:
    def __init__(self, fixture: str = "broker-stack-fixture.ts") -> None:
        self.proc = subprocess.Popen(
            ["npx", "tsx", str(Path(__file__).with_name(fixture))],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
        self.env: dict[str, str] = self._read()

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"broker stack exited with {self.proc.wait()} before it was ready")
        return json.loads(line)

    def command(self, cmd: str) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
