"""Only regular files are read, without blocking, and never past the size limit."""

import os
import socket
import tempfile
from pathlib import Path

import pytest

from aftershock.errors import ExperimentInvalid
from aftershock.loading import UnreadableFile, load_file, load_paths, read_source


def refusal(path: str | Path) -> str:
    """The one problem ``load_file`` reports for ``path``, as printed."""
    with pytest.raises(ExperimentInvalid) as info:
        load_file(path)
    [problem] = info.value.problems
    assert (problem.file, problem.line, problem.column) == (str(path), 1, 1)
    return problem.message


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "exp.yaml"
    os.mkfifo(fifo)
    # No writer: a blocking open would wait here until the test times out.
    assert "a FIFO (named pipe), not a regular file" in refusal(fifo)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_devices_are_refused(device: str) -> None:
    if not Path(device).exists():
        pytest.skip(f"{device} does not exist here")
    assert "a character device, not a regular file" in refusal(device)


def test_a_directory_where_a_file_is_expected_is_refused(tmp_path: Path) -> None:
    assert "a directory, not a regular file" in refusal(tmp_path)


def test_a_socket_is_refused(tmp_path: Path) -> None:
    # A Unix socket's path must fit in about 100 bytes.
    short = Path(tempfile.mkdtemp(prefix="as-")) if len(str(tmp_path)) > 90 else tmp_path
    path = short / "s.yaml"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        assert "a socket, not a regular file" in refusal(path)


def test_a_symlink_loop_is_refused(tmp_path: Path) -> None:
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    assert "symbolic links" in refusal(loop)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path / "nope.yaml") == "no such file or directory"


def test_a_file_is_refused_by_its_size_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(1024**3)  # sparse: no disk, but 1 GiB by fstat
    assert refusal(big) == "file is larger than 1 MiB"


def test_a_file_whose_size_lies_is_read_only_to_the_limit() -> None:
    # /proc files report a size of 0; what a read returns is what counts.
    status = Path("/proc/self/status")
    if not status.exists() or status.stat().st_size != 0:
        pytest.skip("needs a /proc file with st_size 0")
    assert len(read_source(status, limit=100_000)) > 100
    with pytest.raises(UnreadableFile, match="larger than 100 bytes"):
        read_source(status, limit=100)


def test_a_file_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(b"a" * 100)
    assert read_source(path, limit=100) == b"a" * 100
    path.write_bytes(b"a" * 101)
    with pytest.raises(UnreadableFile, match="larger than 100 bytes"):
        read_source(path, limit=100)


def test_special_files_in_a_directory_are_reported_by_name(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "c.yaml").mkdir()
    (tmp_path / "c.yaml" / "d.yml").write_text("- not a document\n")
    documents, problems = load_paths([tmp_path])
    assert documents == []
    by_file = {Path(p.file).name: p.message for p in problems}
    assert set(by_file) == {"a.yaml", "b.yaml", "d.yml"}
    assert "FIFO" in by_file["a.yaml"]
    assert "symbolic links" in by_file["b.yaml"]
    assert all(p.line >= 1 and p.column >= 1 for p in problems)


def test_a_healing_policy_that_is_a_fifo_is_refused_at_the_key(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "policy.yaml")
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        "apiVersion: aftershock.dev/v1alpha1\nkind: Experiment\nmetadata: {name: e}\nspec:\n"
        "  targets: {db: {toxiproxy: {proxy: pg}}}\n"
        "  method: [{name: s, fault: toxiproxy.down, target: db}]\n"
        "  healingPolicy: policy.yaml\n"
    )
    with pytest.raises(ExperimentInvalid) as info:
        load_file(exp)
    [problem] = info.value.problems
    assert (problem.line, problem.column, problem.path) == (7, 3, "spec.healingPolicy")
    assert "FIFO" in problem.message
    assert "policy.yaml" in problem.message
