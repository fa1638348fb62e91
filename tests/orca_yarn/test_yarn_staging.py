"""Uploading archives to HDFS once per content hash, against a WebHDFS server on loopback."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time

import pytest
from orca_yarn.staging import HdfsStage

from orca_core.errors import LaunchError
from orca_core.ports import free_ports

REMOTE = "/user/alice/.orca/envs/abc123.tar.gz"


def test_first_upload_sends_the_file_private_and_whole(webhdfs, small_archive):
    stage = HdfsStage([webhdfs.url], "alice", root="/user/alice/.orca")
    assert stage.upload(str(small_archive), REMOTE, "env") is True
    local = webhdfs.local(REMOTE)
    assert stat.S_IMODE(os.stat(webhdfs.local("/user/alice/.orca")).st_mode) == 0o700
    assert open(local, "rb").read() == small_archive.read_bytes()
    assert stat.S_IMODE(os.stat(local).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(local)).st_mode) == 0o700
    assert webhdfs.bytes_received == small_archive.stat().st_size
    # written under a temporary name, then renamed; nothing temporary is left
    (create,) = [r for r in webhdfs.ops("CREATE") if r[0] == "PUT"][:1]
    assert create[2] != REMOTE and create[2].endswith(".tmp")
    assert [r[2] for r in webhdfs.ops("RENAME")] == [create[2]]
    assert os.listdir(os.path.dirname(local)) == ["abc123.tar.gz"]


def test_second_run_reuses_the_archive_and_sends_no_bytes(webhdfs, small_archive):
    HdfsStage([webhdfs.url], "alice").upload(str(small_archive), REMOTE, "env")
    webhdfs.requests.clear()
    webhdfs.bytes_received = 0
    assert HdfsStage([webhdfs.url], "alice").upload(str(small_archive), REMOTE, "env") is False
    assert webhdfs.bytes_received == 0
    assert [op for _, op, _ in webhdfs.requests] == ["GETFILESTATUS"]


def test_a_truncated_archive_is_replaced(webhdfs, small_archive):
    local = webhdfs.local(REMOTE)
    os.makedirs(os.path.dirname(local))
    with open(local, "wb") as f:
        f.write(b"partial")
    assert HdfsStage([webhdfs.url], "alice").upload(str(small_archive), REMOTE, "env") is True
    assert open(local, "rb").read() == small_archive.read_bytes()


def test_concurrent_uploads_in_threads_end_with_one_intact_file(webhdfs, small_archive):
    errors, results = [], []
    barrier = threading.Barrier(4)

    def upload():
        try:
            stage = HdfsStage([webhdfs.url], "alice")
            barrier.wait(timeout=10)
            results.append(stage.upload(str(small_archive), REMOTE, "env"))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(results) == 4
    folder = os.path.dirname(webhdfs.local(REMOTE))
    assert os.listdir(folder) == ["abc123.tar.gz"]
    assert open(webhdfs.local(REMOTE), "rb").read() == small_archive.read_bytes()


UPLOAD = """
import sys
from orca_yarn.staging import HdfsStage
print(HdfsStage([sys.argv[1]], "alice").upload(sys.argv[2], sys.argv[3], "env"))
"""


def test_concurrent_uploads_from_two_processes(webhdfs, tmp_path):
    archive = tmp_path / "big.tar.gz"
    archive.write_bytes(os.urandom(3 << 20))
    procs = [
        subprocess.Popen([sys.executable, "-c", UPLOAD, webhdfs.url, str(archive), REMOTE],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert os.listdir(os.path.dirname(webhdfs.local(REMOTE))) == ["abc123.tar.gz"]
    assert open(webhdfs.local(REMOTE), "rb").read() == archive.read_bytes()


def test_permission_denied_is_a_clear_error(webhdfs, small_archive):
    webhdfs.denied.add("/user/alice")
    started = time.monotonic()
    with pytest.raises(LaunchError, match=r"HDFS refused.*AccessControlException.*Permission denied.*hadoop_user_name"):
        HdfsStage([webhdfs.url], "alice").upload(str(small_archive), REMOTE, "env")
    assert time.monotonic() - started < 10
    assert webhdfs.bytes_received == 0


def test_unreachable_namenode_fails_within_seconds(small_archive):
    (port,) = free_ports(1)
    started = time.monotonic()
    with pytest.raises(LaunchError, match=rf"cannot reach WebHDFS at http://127.0.0.1:{port}.*webhdfs_url"):
        HdfsStage([f"http://127.0.0.1:{port}"], "alice", timeout=2).upload(str(small_archive), REMOTE, "env")
    assert time.monotonic() - started < 10


def test_stale_temporary_files_are_removed(webhdfs, small_archive):
    folder = os.path.dirname(webhdfs.local(REMOTE))
    os.makedirs(folder)
    stale, fresh = os.path.join(folder, ".x.dead.tmp"), os.path.join(folder, ".x.live.tmp")
    for path in (stale, fresh):
        open(path, "wb").close()
    old = time.time() - 2 * 24 * 3600
    os.utime(stale, (old, old))
    HdfsStage([webhdfs.url], "alice").upload(str(small_archive), REMOTE, "env")
    assert sorted(os.listdir(folder)) == [".x.live.tmp", "abc123.tar.gz"]
