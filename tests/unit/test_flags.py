"""Flags checked at parse time (issue 13, item 6): a bad value is an argparse error
naming the flag, exit status 2, never a traceback or a service that starts oddly."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from collabdnn.cli import _build_parser, apply_environment
from collabdnn.limits import DEFAULT_MAX_ASPECT, DEFAULT_MAX_SIDE
from collabdnn.transport.security import SecurityError, config_from_args

BAD_FLAGS = [
    ("cloud", ["--port", "99999"], "--port: must be in 0..65535"),
    ("cloud", ["--port", "-1"], "--port: must be in 0..65535"),
    ("cloud", ["--port", "http"], "--port: invalid port value"),
    ("scheduler", ["--port", "70000"], "--port: must be in 0..65535"),
    ("mobile", ["--timeout", "-1"], "--timeout: must be more than 0"),
    ("mobile", ["--timeout", "0"], "--timeout: must be more than 0"),
    ("mobile", ["--timeout", "nan"], "--timeout: must be a finite number"),
    ("mobile", ["--workers", "0"], "--workers: must be at least 1"),
    ("cloud", ["--workers", "0"], "--workers: must be at least 1"),
    ("scheduler", ["--workers", "0"], "--workers: must be at least 1"),
    ("mobile", ["--zstd-level", "99"], "--zstd-level: must be in -7..22"),
    ("mobile", ["--zstd-level", "-8"], "--zstd-level: must be in -7..22"),
    ("cloud", ["--max-message-mb", "0"], "--max-message-mb: must be more than 0"),
    ("cloud", ["--max-frame-mb", "-5"], "--max-frame-mb: must be more than 0"),
    ("mobile", ["--max-frame-mb", "inf"], "--max-frame-mb: must be a finite number"),
    ("cloud", ["--max-image-mb", "0"], "--max-image-mb: must be more than 0"),
    ("cloud", ["--max-pixels", "0"], "--max-pixels: must be at least 1"),
    ("mobile", ["--max-side", "0"], "--max-side: must be at least 1"),
    ("mobile", ["--max-aspect", "0.5"], "--max-aspect: must be at least 1"),
    ("cloud", ["--grace", "-1"], "--grace: must be 0 or more"),
    ("cloud", ["--threads", "-2"], "--threads: must be 0 or more"),
    ("mobile", ["--battery", "1.5"], "--battery: must be in 0..1"),
    ("mobile", ["--link-window", "0"], "--link-window: must be at least 1"),
    ("mobile", ["--report-s", "0"], "--report-s: must be more than 0"),
    ("scheduler", ["--weight", "2"], "--weight: must be in 0..1"),
    ("scheduler", ["--profile-repeats", "0"], "--profile-repeats: must be at least 1"),
    ("scheduler", ["--push-check-s", "0"], "--push-check-s: must be more than 0"),
    ("classify", ["--timeout", "-3", "x.png"], "--timeout: must be more than 0"),
    ("train", ["--data", "d", "--lr", "0"], "--lr: must be more than 0"),
    ("train", ["--data", "d", "--momentum", "2"], "--momentum: must be in 0..1"),
    ("train", ["--data", "d", "--weight-decay", "-1"], "--weight-decay: must be 0 or more"),
    ("train", ["--data", "d", "--steps", "0"], "--steps: must be at least 1"),
    ("health", ["--timeout", "0", "host:1"], "--timeout: must be more than 0"),
]


@pytest.mark.parametrize("command,argv,message", BAD_FLAGS)
def test_bad_numbers_are_argparse_errors(command, argv, message, capsys):
    parser = _build_parser(command)
    with pytest.raises(SystemExit) as exited:
        parser.parse_args([command, *argv])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "command,argv",
    [
        ("cloud", ["--port", "0", "--workers", "1", "--grace", "0", "--max-aspect", "1"]),
        ("cloud", ["--port", "65535", "--max-side", "100000", "--max-image-mb", "0.5"]),
        ("mobile", ["--zstd-level", "-7", "--timeout", "0.5", "--battery", "0"]),
        ("mobile", ["--zstd-level", "22", "--zstd-level", "0"]),
        ("scheduler", ["--load-poll-s", "0", "--weight", "1", "--profile-warmup", "0"]),
    ],
)
def test_edge_values_are_accepted(command, argv):
    _build_parser(command).parse_args([command, *argv])


def test_image_limit_flags_and_defaults():
    for command in ("cloud", "mobile"):
        args = _build_parser(command).parse_args([command])
        assert args.max_side == DEFAULT_MAX_SIDE and args.max_aspect == DEFAULT_MAX_ASPECT
        args = _build_parser(command).parse_args([command, "--max-side", "9000"])
        assert args.max_side == 9000


def test_a_bad_environment_value_is_an_argparse_error_naming_the_variable(capsys):
    parser = argparse.ArgumentParser(prog="collabdnn cloud")
    from collabdnn.cli._service_args import add_service_args

    add_service_args(parser, 50051)
    with pytest.raises(SystemExit) as exited:
        apply_environment(parser, {"COLLABDNN_PORT": "99999"})
    assert exited.value.code == 2
    assert "COLLABDNN_PORT='99999': must be in 0..65535" in capsys.readouterr().err
    apply_environment(parser, {"COLLABDNN_WORKERS": "3"})
    assert parser.parse_args([]).workers == 3


# ------------------------------------------------------------------ --token-file


def _security_args(argv: list[str], environ: dict[str, str] | None = None) -> argparse.Namespace:
    parser = _build_parser("health")
    if environ is not None:
        sub = next(
            action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
        )
        apply_environment(sub.choices["health"], environ)
    return parser.parse_args(["health", *argv, "127.0.0.1:1"])


def test_token_file(tmp_path: Path):
    path = tmp_path / "token"
    path.write_text("s3cret-from-a-file\n")
    config = config_from_args(_security_args(["--token-file", str(path)]))
    assert config.token == "s3cret-from-a-file"
    # The environment names the file too (Compose secrets are files).
    config = config_from_args(_security_args([], {"COLLABDNN_TOKEN_FILE": str(path)}))
    assert config.token == "s3cret-from-a-file"
    # --token still works.
    assert config_from_args(_security_args(["--token", "abc"])).token == "abc"


def test_token_file_errors_name_the_file(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.write_text("\n\n")
    with pytest.raises(SecurityError, match="token file .*empty.* is empty"):
        config_from_args(_security_args(["--token-file", str(empty)]))
    with pytest.raises(SecurityError, match="cannot read token file .*missing"):
        config_from_args(_security_args(["--token-file", str(tmp_path / "missing")]))
    path = tmp_path / "token"
    path.write_text("x")
    with pytest.raises(SecurityError, match="--token or --token-file, not both"):
        config_from_args(_security_args(["--token", "y", "--token-file", str(path)]))
