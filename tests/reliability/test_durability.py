"""Nothing acknowledged is lost: SIGKILL during concurrent writes, and a disk that fills up."""

from __future__ import annotations

import random
import re
import resource
import subprocess
from pathlib import Path

import grpc
import pytest
from harness import ServerProcess
from reliability.durability import durability_violations, run_writes_with_kills
from reliability.reliability_support import Admin, is_serving, rule_set, store_problems

from verdict.v1 import admin_pb2

# The default run's share of issue 8's 1,000-write experiment (tests/soak/test_soak_durability.py runs all of it).
WRITES = 200
KILLS = 4


def test_acknowledged_writes_survive_sigkill_at_random_moments(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = run_writes_with_kills(data_dir, writes=WRITES, kills=KILLS, seed=8)
    assert log.kills == KILLS
    assert len(log.acked) >= WRITES
    assert durability_violations(data_dir, log) == []


# disk full -----------------------------------------------------------------------------------------------------------

BIG_DOCUMENT_BYTES = 96 * 1024
MAX_WRITES_BEFORE_FULL = 200
FULL_STATUSES = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE}
TMPFS_BYTES = 3 * 1024 * 1024
FILE_LIMIT_HEADROOM_BYTES = 256 * 1024


class _FileSizeLimit:
    """RLIMIT_FSIZE on the server process: works for root and plain users alike, without a mount.

    Once the process may not grow a file past the limit, SQLite's writes fail with EFBIG as they would on a full disk
    (CPython ignores SIGXFSZ, so the server gets the error instead of being killed). A restarted process has no limit.
    """

    def __init__(self, root: Path) -> None:
        self.data_dir = root / "data"

    def fill_up(self, process: ServerProcess) -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.prlimit(process.proc.pid, resource.RLIMIT_FSIZE, (_largest_file(self.data_dir) + 4096, hard))

    def limit_soon(self, process: ServerProcess) -> None:
        limit = _largest_file(self.data_dir) + FILE_LIMIT_HEADROOM_BYTES
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.prlimit(process.proc.pid, resource.RLIMIT_FSIZE, (limit, hard))

    def make_room(self) -> None:
        pass

    def close(self) -> None:
        pass


class _SmallTmpfs:
    """The data directory on a 3 MiB tmpfs: a real ENOSPC. Needs mount rights (root), so it is skipped elsewhere."""

    def __init__(self, root: Path) -> None:
        self.data_dir = root / "disk"  # the harness writes its stderr log next to the data directory, not in it
        self.data_dir.mkdir()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(self.data_dir)],
            capture_output=True,
            text=True,
        )
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")

    def limit_soon(self, process: ServerProcess) -> None:
        pass  # the mount's size is the limit

    def make_room(self) -> None:
        subprocess.run(["mount", "-o", "remount,size=64m", str(self.data_dir)], check=True)

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.data_dir)], check=False)


@pytest.fixture(params=["file-size-limit", "tmpfs"])
def small_disk(request: pytest.FixtureRequest, tmp_path: Path):
    disk = _FileSizeLimit(tmp_path) if request.param == "file-size-limit" else _SmallTmpfs(tmp_path)
    yield disk
    disk.close()


def _big_document(name: str, seq: int) -> str:
    rng = random.Random(seq)  # incompressible-looking, but reproducible
    filler = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(BIG_DOCUMENT_BYTES))
    return rule_set(
        name,
        f"""\
        description: "{filler}"
        default: {{seq: {seq}}}
        rules:
          - id: never
            when: "false"
            then: 1
        """,
    )


def _largest_file(data_dir: Path) -> int:
    return max(path.stat().st_size for path in data_dir.iterdir() if path.is_file())


def test_a_full_disk_fails_the_write_clearly_and_damages_nothing(small_disk) -> None:
    data_dir = small_disk.data_dir
    process = ServerProcess(data_dir).start()
    stored = {}
    try:
        admin = Admin(process)
        for seq in range(3):
            name = f"full.before-{seq}"
            content = _big_document(name, seq)
            stored[(name, admin.put(content))] = content
        small_disk.limit_soon(process)

        failure = None
        for seq in range(100, 100 + MAX_WRITES_BEFORE_FULL):
            name = f"full.during-{seq % 5}"
            content = _big_document(name, seq)
            try:
                stored[(name, admin.put(content))] = content
            except grpc.RpcError as err:
                failure = err
                break
        assert failure is not None, f"{MAX_WRITES_BEFORE_FULL} writes of {BIG_DOCUMENT_BYTES} bytes all fit"
        assert failure.code() in FULL_STATUSES, (failure.code(), failure.details())
        assert re.search(r"full|store", failure.details(), re.IGNORECASE), failure.details()

        # Still full: the server answers, and what was stored reads back intact.
        assert is_serving(process)
        for (name, version), content in stored.items():
            assert admin.get("RuleSet", name, version).content == content
        with pytest.raises(grpc.RpcError) as again:
            admin.put(_big_document("full.after", 999))
        assert again.value.code() in FULL_STATUSES
        admin.close()
    finally:
        process.kill()

    assert store_problems(data_dir) == []
    small_disk.make_room()
    with ServerProcess(data_dir) as restarted:
        admin = Admin(restarted)
        try:
            for (name, version), content in stored.items():
                assert admin.get("RuleSet", name, version).content == content
            assert admin.put(_big_document("full.after", 1000)) == 1
        finally:
            admin.close()
    assert store_problems(data_dir) == []


def test_a_refused_write_leaves_nothing_behind(tmp_path: Path) -> None:
    """A write refused for lack of space is not stored at all: the history is exactly the acknowledged writes."""
    data_dir = tmp_path / "data"
    with ServerProcess(data_dir) as process:
        admin = Admin(process)
        name = "full.head"
        acknowledged = [_big_document(name, 0)]
        assert admin.put(acknowledged[0]) == 1
        _FileSizeLimit(tmp_path).fill_up(process)
        refused = []
        for seq in range(1, 11):
            content = _big_document(name, seq)
            try:
                # expected_version: a refused write that was stored after all would make the next one ABORTED.
                admin.put(content, expected_version=len(acknowledged))
                acknowledged.append(content)
            except grpc.RpcError as err:
                refused.append((err.code(), err.details()))
        assert refused, "nothing was refused under a limit of 4 KiB above the current files"
        assert {code for code, _ in refused} <= FULL_STATUSES, refused
        assert [doc.content for doc in reversed(admin.history("RuleSet", name))] == acknowledged
        request = admin_pb2.GetDocumentRequest(kind="RuleSet", name=name, version=len(acknowledged) + 1)
        with pytest.raises(grpc.RpcError) as missing:
            admin.stub.GetDocument(request, timeout=10, metadata=admin.metadata)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        admin.close()
