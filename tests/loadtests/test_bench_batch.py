"""loadtests/bench_batch.py: a short run against its own Redis, and reading callgrind's total."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"


def _load(name: str) -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(LOADTESTS))
        return importlib.import_module(name)


def test_a_short_run_counts_every_event_and_prints_its_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench_batch = _load("bench_batch")
    assert bench_batch.main(["--batches", "3", "--events", "10", "--visitors", "12"]) == 0
    printed = capsys.readouterr().out
    assert "3 batches of 10 events (one order in 5), 12 visitors in 5 experiments" in printed
    assert "100% accepted" in printed  # every visitor is enrolled in every experiment
    figures = re.search(
        r"wall p50 ([\d.]+) ms, p99 ([\d.]+) ms; this process's CPU ([\d.]+) ms; "
        r"Redis's scripts \(EVALSHA\) ([\d.]+) ms of its CPU ([\d.]+) ms",
        printed,
    )
    assert figures is not None, printed
    p50, p99, cpu, scripts, redis_cpu = (float(value) for value in figures.groups())
    assert 0 < p50 <= p99
    assert cpu > 0 and scripts > 0 and redis_cpu > 0


def test_the_batches_are_the_shop_mix() -> None:
    bench_batch = _load("bench_batch")
    batch = bench_batch._batch(["a", "b"], 10, 5)
    assert [event["type"] for event in batch].count("order") == 2
    assert {event["visitor"] for event in batch} <= {"a", "b"}
    assert len({event["id"] for event in batch}) == 10


def test_callgrind_totals_are_read_from_its_output(tmp_path: Path) -> None:
    bench_batch = _load("bench_batch")
    output = tmp_path / "callgrind.out"
    output.write_text("version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 303629812\n")
    assert bench_batch._instructions(output) == 303_629_812
    output.write_text("events: Ir\nfl=x\n")
    with pytest.raises(SystemExit):
        bench_batch._instructions(output)
