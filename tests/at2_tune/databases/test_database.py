import json
import shutil

import numpy as np
import pytest

from at2_tune import paths
from at2_tune.databases import convert, get_spec, load_database
from at2_tune.errors import AT2Error, DatabaseError, UnknownTaskError


def test_hyperrec_shape_tasks_and_pairs(hyperrec):
    assert hyperrec.curves.shape == (2, 27, 100, 75)
    assert (hyperrec.n_seeds, hyperrec.n_tasks, hyperrec.n_configs, hyperrec.n_epochs) == (2, 27, 100, 75)
    assert len(hyperrec.tasks) == 27 and "CIFAR100" in hyperrec.tasks
    assert len(hyperrec.pairs) == 5
    assert hyperrec.pair(0).test_task == "CIFAR100"
    assert hyperrec.pair(0).train_tasks == ("IMAGENET64SUB1", "SUN397SUB3", "SUN397SUB2", "OIPETS")
    assert np.all((hyperrec.curves >= 0) & (hyperrec.curves <= 1))
    assert not hyperrec.curves.flags.writeable


def test_lcbench_shape_and_pairs(lcbench):
    assert lcbench.curves.shape == (1, 35, 100, 50)
    assert [p.test_task for p in lcbench.pairs] == ["adult", "jasmine", "numerai28.6", "phoneme", "shuttle"]


def test_lcbench_keeps_its_50_trained_epochs(lcbench, lcbench_as_released):
    """The release's 52 values per curve: the network before training, 50 epochs, the last
    repeated. The database keeps values 1..50, so value e is the accuracy after e + 1 epochs."""
    assert lcbench_as_released.curves.shape == (1, 35, 100, 52)
    np.testing.assert_array_equal(lcbench.curves, lcbench_as_released.curves[..., 1:51])
    before_training = lcbench_as_released.task_curves("Fashion-MNIST")[:, 0]
    after_one_epoch = lcbench.task_curves("Fashion-MNIST")[:, 0]
    assert np.median(before_training) < 0.15 < 0.6 < np.median(after_one_epoch)  # 10 classes


def test_configs_are_in_the_space_vocabulary(hyperrec, lcbench):
    from search_spaces import get_space

    assert all(get_space("hyperrec").validate(c) == c for c in hyperrec.configs)
    assert all(get_space("lcbench").validate(c) == c for c in lcbench.configs)
    assert hyperrec.raw_configs[0]["batchsize"] == hyperrec.configs[0]["batch_size"]


def test_curves_match_the_raw_release(hyperrec, release_dir):
    from at2_tune.databases.safe_pickle import safe_load_file

    profiles = safe_load_file(release_dir / "hyperrec" / "profiles.pkl")
    for seed, task, config_id in [(0, "CIFAR10", 0), (1, "SUN397SUB3", 99), (0, "ACTION40", 42)]:
        np.testing.assert_array_equal(hyperrec.curve(task, config_id, seed), profiles[seed][task][config_id])


def test_final_rank_and_regret_helpers(hyperrec):
    final = hyperrec.final_values("CIFAR100")
    assert final.shape == (100,)
    np.testing.assert_array_equal(final, hyperrec.task_curves("CIFAR100").max(axis=1))
    best = int(np.argmax(final))
    assert hyperrec.rank("CIFAR100", best) == 0 and hyperrec.regret("CIFAR100", best) == 0.0
    worst = int(np.argmin(final))
    assert hyperrec.regret("CIFAR100", worst) == pytest.approx(final.max() - final.min())
    ranks = hyperrec.ranks("CIFAR100", seed=1)
    final = hyperrec.final_values("CIFAR100", seed=1)
    better = final[:, None] > final[None, :]
    assert np.all(ranks[:, None] < ranks[None, :], where=better)
    assert ranks.min() == 0 and ranks.max() <= 99


def test_ties_share_a_rank():
    from at2_tune.databases import LearningCurveDatabase

    curves = np.array([[[[0.1, 0.5], [0.5, 0.2], [0.3, 0.3]]]])
    db = LearningCurveDatabase("toy", ("t",), ({}, {}, {}), ({}, {}, {}), curves, (), "none")
    assert db.ranks("t").tolist() == [0, 0, 2]


def test_unknown_task_seed_config_and_pair_are_clear_errors(hyperrec):
    with pytest.raises(UnknownTaskError, match=r"unknown task 'CIFAR1000'.*Did you mean 'CIFAR100'"):
        hyperrec.curve("CIFAR1000", 0)
    with pytest.raises(AT2Error, match=r"seed profile 2 does not exist.*0\.\.1"):
        hyperrec.final_values("CIFAR10", seed=2)
    with pytest.raises(AT2Error, match=r"config id 100 does not exist"):
        hyperrec.rank("CIFAR10", 100)
    with pytest.raises(AT2Error, match=r"pair 5 does not exist"):
        hyperrec.pair(5)


def test_cache_is_written_once_and_reused(release_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(paths.CACHE_DIR_ENV, str(tmp_path))
    first = load_database("hyperrec", release_dir)
    cache_dirs = list(paths.converted_dir().iterdir())
    assert [d.name for d in cache_dirs] == [convert.cache_key(get_spec("hyperrec"))]
    assert sorted(p.name for p in cache_dirs[0].iterdir()) == ["curves.npz", "meta.json"]
    with np.load(cache_dirs[0] / "curves.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["curves"], first.curves)

    def no_parsing(*_args):
        raise AssertionError("the release was parsed again although a cache exists")

    monkeypatch.setattr("at2_tune.databases.loader.parse_release", no_parsing)
    second = load_database("hyperrec", release_dir)
    np.testing.assert_array_equal(second.curves, first.curves)
    assert second.configs == first.configs and second.pairs == first.pairs


def test_damaged_cache_is_rebuilt(release_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(paths.CACHE_DIR_ENV, str(tmp_path))
    reference = load_database("lcbench", release_dir)
    cache = paths.converted_dir() / convert.cache_key(get_spec("lcbench"))
    (cache / "curves.npz").write_bytes(b"garbage")
    rebuilt = load_database("lcbench", release_dir)
    np.testing.assert_array_equal(rebuilt.curves, reference.curves)
    meta = json.loads((cache / "meta.json").read_text())
    assert meta["format_version"] == convert.CACHE_FORMAT_VERSION


def test_failed_conversion_leaves_no_partial_cache(release_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(paths.CACHE_DIR_ENV, str(tmp_path))

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError, match="No space left"):
        load_database("hyperrec", release_dir)
    assert list(paths.converted_dir().iterdir()) == []


def test_release_with_wrong_structure_is_rejected(release_dir, tmp_path):
    import pickle

    spec = get_spec("lcbench")
    data_dir = tmp_path / "data"
    shutil.copytree(release_dir / "lcbench", data_dir / "lcbench")
    shutil.copyfile(release_dir / "train_test_pairs.json", data_dir / "train_test_pairs.json")
    (data_dir / "lcbench" / "profiles.pkl").write_bytes(pickle.dumps({0: {"adult": {0: [0.5] * 3}}}))
    files = {"configs": data_dir / spec.configs.local_path,
             "profiles": data_dir / spec.profiles.local_path,
             "pairs": data_dir / spec.pairs.local_path}
    with pytest.raises(DatabaseError, match=r"task 'adult', config 0 has \(3,\) values.*52 values each"):
        convert.parse_release(spec, files)
