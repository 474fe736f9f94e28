"""The durable spool: per-process files, adoption only of ended processes, fork, bad folders."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from splitwerk import Client, ConfigError
from splitwerk.spool import Spool, check_folder


def test_a_living_processes_spool_is_not_adopted_and_an_ended_ones_is(tmp_path: Path) -> None:
    first, second = Spool(tmp_path), Spool(tmp_path)
    first.add(2, b'{"type":"order","order_id":"o-1"}', 1.0)
    first.add(2, b'{"type":"order","order_id":"o-2"}', 2.0)
    assert second.adopt() == []  # first still holds its lock: it sends its rows itself
    first.close()  # unlocks, rows left: as if its process had ended
    adopted = second.adopt()
    assert [(priority, body, at) for _, priority, body, at in adopted] == [
        (2, b'{"type":"order","order_id":"o-1"}', 1.0),
        (2, b'{"type":"order","order_id":"o-2"}', 2.0),
    ]
    second.remove([spool_id for spool_id, *_ in adopted])
    second.close()
    assert list(tmp_path.iterdir()) == []  # nothing left behind


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_writes_its_own_file_and_the_parent_keeps_its_lock(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.add(2, b"{}", 1.0)
    (parent_lock,) = tmp_path.glob("*.lock")
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            spool.add(2, b"{}", 2.0)
            descriptor = os.open(parent_lock, os.O_RDWR)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                code = 0 if len(list(tmp_path.glob("*.lock"))) == 2 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    adopted = spool.adopt()  # the child has ended: its row is ours now
    assert [at for _, _, _, at in adopted] == [2.0]
    spool.close()


def test_a_spool_folder_that_cannot_be_used_is_refused_at_construction(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ConfigError):
        check_folder(a_file / "spool")
    with pytest.raises(ConfigError):
        Client("http://127.0.0.1:9", spool_dir=123, handle_sigterm=False)  # type: ignore[arg-type]


def test_orders_are_spooled_until_the_server_answers(tmp_path: Path) -> None:
    client = Client(
        "http://127.0.0.1:9",  # nothing listens: the orders stay
        ingest_key="key",
        poll_interval=None,
        spool_dir=tmp_path,
        retry_backoff=0.01,
        handle_sigterm=False,
    )
    client.order("v-1", "o-1", revenue="1.00")
    client.track("goal", "v-1")  # conversions are not spooled
    probe = Spool(tmp_path)
    client.close(0.2)
    adopted = probe.adopt()
    assert [body.count(b'"order_id":"o-1"') for _, _, body, _ in adopted] == [1]
    probe.close()


def test_a_lock_file_left_before_its_rename_is_cleared(tmp_path: Path) -> None:
    (tmp_path / "spool-1-dead.new").write_text("")  # its process died between open and rename
    spool = Spool(tmp_path)
    assert spool.adopt() == []
    assert not list(tmp_path.glob("*.new"))
    spool.close()
