import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from at2_tune import paths
from at2_tune.databases import fetch, get_spec, locate, verified_files, verify_file
from at2_tune.errors import ChecksumError, DatabaseError, DatabaseNotFoundError, UnknownDatabaseError

HYPERREC = get_spec("hyperrec")


def _copy_release(release_dir: Path, dest: Path, spec=HYPERREC) -> Path:
    for release_file in spec.files:
        (dest / release_file.local_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(release_dir / release_file.local_path, dest / release_file.local_path)
    return dest


def test_release_files_match_pinned_checksums(release_dir):
    for name in ("hyperrec", "lcbench"):
        for release_file in get_spec(name).files:
            assert verify_file(release_dir, release_file).is_file()


def test_missing_file_error_names_file_and_fix(tmp_path):
    with pytest.raises(DatabaseNotFoundError) as info:
        verify_file(tmp_path, HYPERREC.profiles)
    assert str(tmp_path / "hyperrec" / "profiles.pkl") in str(info.value)
    assert "at2-tune data fetch" in str(info.value)


def test_corrupt_and_truncated_files_fail_the_checksum(release_dir, tmp_path):
    data_dir = _copy_release(release_dir, tmp_path)
    profiles = data_dir / HYPERREC.profiles.local_path
    raw = bytearray(profiles.read_bytes())
    raw[1000] ^= 0xFF
    profiles.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match=r"profiles\.pkl: SHA-256 is [0-9a-f]{64} but"):
        verify_file(data_dir, HYPERREC.profiles)
    profiles.write_bytes(bytes(raw[:5000]))
    with pytest.raises(ChecksumError, match="5000 bytes on disk"):
        verify_file(data_dir, HYPERREC.profiles)


def test_unknown_database_suggests_the_closest_name():
    with pytest.raises(UnknownDatabaseError, match=r"unknown database 'hyperec'.*'hyperrec'"):
        get_spec("hyperec")


def test_resolution_order_argument_then_env_then_cache(release_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(paths.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(paths.DATA_DIR_ENV, raising=False)
    assert locate(HYPERREC) is None
    with pytest.raises(DatabaseNotFoundError, match="no copy of the hyperrec release"):
        verified_files(HYPERREC, download=False)

    cached = _copy_release(release_dir, paths.cached_data_dir())
    assert locate(HYPERREC).data_dir == cached and locate(HYPERREC).source == "cache"
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(release_dir))
    assert locate(HYPERREC).data_dir == release_dir
    explicit = tmp_path / "explicit"
    assert locate(HYPERREC, explicit).data_dir == explicit
    with pytest.raises(DatabaseNotFoundError, match="explicit"):  # no silent fallback
        verified_files(HYPERREC, explicit)


class _Server:
    """A real HTTP server on 127.0.0.1 serving a folder laid out like the public release."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
        handler.log_message = lambda *args: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def release_server(release_dir, tmp_path):
    remote = tmp_path / "remote"
    for release_file in HYPERREC.files:
        target = remote / release_file.remote_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(release_dir / release_file.local_path, target)
    server = _Server(remote)
    yield server, remote
    server.close()


def test_fetch_downloads_verifies_and_skips_present_files(release_server, tmp_path):
    server, _ = release_server
    dest = tmp_path / "dest"
    paths_fetched = fetch(HYPERREC, dest, base_url=server.url, progress=False)
    assert [p.relative_to(dest).as_posix() for p in paths_fetched] == \
        [f.local_path for f in HYPERREC.files]
    mtimes = [p.stat().st_mtime_ns for p in paths_fetched]
    assert [p.stat().st_mtime_ns for p in fetch(HYPERREC, dest, base_url=server.url)] == mtimes


def test_truncated_download_leaves_no_partial_file(release_server, tmp_path):
    server, remote = release_server
    served = remote / HYPERREC.profiles.remote_path
    served.write_bytes(served.read_bytes()[:100_000])
    dest = tmp_path / "dest"
    with pytest.raises(ChecksumError, match="downloaded 100000 bytes"):
        fetch(HYPERREC, dest, base_url=server.url, progress=False)
    leftovers = sorted(p.name for p in (dest / "hyperrec").iterdir())
    assert leftovers == ["configs.pkl"]  # verified before the failure; no profiles, no .part


def test_fetch_keeps_a_corrupt_local_file_aside(release_server, tmp_path):
    server, _ = release_server
    dest = tmp_path / "dest"
    bad = dest / HYPERREC.configs.local_path
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not the release")
    fetch(HYPERREC, dest, base_url=server.url, progress=False)
    assert verify_file(dest, HYPERREC.configs)
    assert (bad.parent / "configs.pkl.bad").read_bytes() == b"not the release"


def test_unreachable_server_is_a_clear_error(tmp_path):
    with pytest.raises(DatabaseError, match=r"download failed.*AT2_DATA_DIR"):
        fetch(HYPERREC, tmp_path, base_url="http://127.0.0.1:9/", progress=False)
    assert not any(tmp_path.rglob("*.part"))
