import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from at2_tune.cli import main


def test_verify_passes_on_the_release(release_dir, capsys):
    assert main(["data", "verify", "--data-dir", str(release_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count("ok    ") == 8  # 3 files + "loads safely" for each of the 2 databases
    assert "hyperrec: loads safely, 27 tasks x 100 configs x 75 epochs x 2 seed profile(s)" in out


def test_verify_reports_one_line_per_bad_file(release_dir, tmp_path, capsys):
    shutil.copytree(release_dir, tmp_path / "data")
    data = tmp_path / "data"
    for path in data.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    (data / "hyperrec" / "configs.pkl").unlink()
    profiles = data / "hyperrec" / "profiles.pkl"
    profiles.write_bytes(profiles.read_bytes()[:1000])
    assert main(["data", "verify", "hyperrec", "--data-dir", str(data)]) == 1
    captured = capsys.readouterr()
    fails = [line for line in captured.out.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 2
    assert "configs.pkl: file not found" in fails[0]
    assert "profiles.pkl: SHA-256 is" in fails[1]
    assert "Traceback" not in captured.out + captured.err


def test_info_prints_shape_tasks_and_pairs(release_dir, capsys):
    assert main(["data", "info", "lcbench", "--data-dir", str(release_dir)]) == 0
    out = capsys.readouterr().out
    assert "lcbench: 35 tasks x 100 configs x 50 epochs x 1 seed profile(s)" in out
    assert "dionis, volkert, higgs, sylvine -> jasmine" in out
    assert "numerai28.6" in out


def test_user_errors_print_one_line_and_exit_2(tmp_path, capsys):
    assert main(["data", "info", "hyperrec", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("at2-tune: error: ") and "file not found" in err
    assert len(err.strip().splitlines()) == 1


def test_space_command_prints_the_space_and_samples(capsys):
    assert main(["space", "hyperrec", "--sample", "2", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "CosineAnnealingWarmRestarts" in out and out.count("encoded:") == 2


@pytest.mark.integration  # the installed console script, in subprocesses
def test_console_script_is_installed(release_dir):
    script = Path(sys.executable).with_name("at2-tune")
    if not script.exists():
        pytest.skip("at2-tune is not installed in this environment (run through `make test`)")
    result = subprocess.run([str(script), "data", "verify", "hyperrec", "--data-dir", str(release_dir)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run([str(script), "data", "verify", "nope"], capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice: 'nope'" in result.stderr


def test_ray_token_notice_is_dropped_but_the_auth_off_warning_kept(caplog) -> None:
    import logging

    from at2_tune.notices import RAY_AUTH_LOGGER, quiet_notices

    quiet_notices()
    quiet_notices()  # idempotent: one filter
    logger = logging.getLogger(RAY_AUTH_LOGGER)
    assert len(logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger=RAY_AUTH_LOGGER):
        logger.warning("Token authentication is enabled for this Ray cluster. Set ...")
        logger.warning("Token authentication is disabled for this Ray cluster. Anyone ...")
    assert [r.getMessage()[:36] for r in caplog.records] == \
        ["Token authentication is disabled for"]


@pytest.mark.parametrize("status, exits_at_once", [(0, False), (2, False), (130, True),
                                                   (143, True)])
def test_an_interrupted_command_exits_without_the_interpreters_teardown(monkeypatch, status,
                                                                         exits_at_once):
    from at2_tune import cli

    monkeypatch.setattr(cli, "main", lambda: status)
    monkeypatch.setattr(cli.os, "_exit", lambda code: (_ for _ in ()).throw(OSError(code)))
    with pytest.raises(OSError if exits_at_once else SystemExit) as ended:
        cli.run()
    assert ended.value.args[0] == status
