"""``collabdnn weights fetch``: one clear line and exit 1 without network, never a
traceback; nothing half-written is left. The network is never reached: every download
here goes to 127.0.0.1 (a closed port, or a local server sending the wrong bytes)."""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from collabdnn.cli import main


@pytest.fixture()
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path / "hub" / "checkpoints"


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_without_network_one_line_and_exit_1(torch_home: Path) -> None:
    url = "http://127.0.0.1:1/alexnet-owt-7be5be79.pth"  # nothing listens on port 1
    rc, out, err = run(["weights", "fetch", "alexnet", "--weights-url", url, "--timeout", "5"])
    assert rc == 1 and not out
    assert err.count("\n") == 1 and err.startswith("collabdnn weights fetch: error: cannot down")
    assert "Traceback" not in err
    assert not torch_home.exists() or not any(torch_home.iterdir())


@pytest.fixture()
def wrong_bytes_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"nope!")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alexnet-owt-7be5be79.pth"
    server.shutdown()
    thread.join(5)


def test_a_corrupted_download_is_refused_and_removed(
    torch_home: Path, wrong_bytes_server: str
) -> None:
    rc, _, err = run(["weights", "fetch", "alexnet", "--weights-url", wrong_bytes_server])
    assert rc == 1 and "SHA-256" in err and err.count("\n") == 1
    assert not any(torch_home.iterdir())


def test_weights_already_there_and_unknown_models(torch_home: Path) -> None:
    torch_home.mkdir(parents=True)
    (torch_home / "alexnet-owt-7be5be79.pth").write_bytes(b"x")
    rc, out, _ = run(["weights", "fetch", "alexnet", "--weights-url", "http://127.0.0.1:1/"])
    assert rc == 0 and "already in the torch cache" in out
    rc, _, err = run(["weights", "fetch", "alexnet-2012"])
    assert rc == 1 and "no official ImageNet weights" in err
    rc, _, err = run(["weights", "fetch", "no_such_model"])
    assert rc == 1 and err.count("\n") == 1
