import os
import pickle
from collections import defaultdict

import numpy as np
import pytest

from at2_tune.databases.safe_pickle import safe_load, safe_load_file
from at2_tune.errors import DatabaseError, UnsafePickleError


class _RunsShellCommand:
    """Pickles to a call of os.system: what a malicious database file would hold."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_malicious_os_system_pickle_is_refused_and_executes_nothing(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_RunsShellCommand(f"touch {marker}"))
    with pytest.raises(UnsafePickleError, match=r"refused to load global (posix|os)\.system"):
        safe_load(payload, "evil.pkl")
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    b"cbuiltins\neval\n(V__import__('os').system('touch PWNED')\ntR.",
    b"csubprocess\nPopen\n((Vtouch\nVPWNED\nltR.",
    # dill-style: import a module through dill's helpers, then read an attribute from it
    b"cdill._dill\n_get_attr\n(cdill._dill\n_import_module\n(Vos\ntRVsystem\ntR(Vtouch PWNED\ntR.",
    # dill-style: rebuild a type by name
    b"cdill._dill\n_load_type\n(Vfunction\ntR.",
])
def test_other_code_paths_are_refused(payload, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsafePickleError):
        safe_load(payload, "evil.pkl")
    assert not (tmp_path / "PWNED").exists()


def test_plain_containers_and_arrays_load():
    value = {0: defaultdict(dict, {"task": {3: np.arange(4.0)}}), "list": [1, 2.5, True]}
    loaded = safe_load(pickle.dumps(value, protocol=4), "plain.pkl")
    np.testing.assert_array_equal(loaded[0]["task"][3], np.arange(4.0))
    assert loaded["list"] == [1, 2.5, True]


def test_truncated_pickle_is_a_clear_database_error():
    payload = pickle.dumps({"a": np.arange(100.0)})
    with pytest.raises(DatabaseError, match=r"cut\.pkl: not a readable database pickle.*truncated"):
        safe_load(payload[: len(payload) // 2], "cut.pkl")


def test_release_profiles_load_with_inert_default_factories(release_dir):
    profiles = safe_load_file(release_dir / "hyperrec" / "profiles.pkl")
    assert isinstance(profiles, defaultdict) and profiles.default_factory is None
    assert sorted(profiles) == [0, 1]
    assert profiles[0].default_factory is dict  # rebuilt by name from the allow-list
    curve = profiles[0]["CIFAR10"][0]
    assert curve.shape == (75,) and curve.dtype == np.float64
