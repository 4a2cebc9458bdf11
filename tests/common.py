"""Constants and helpers shared by the test folders (import them; fixtures live in conftest).

``REPO`` is the repository root: tests find files through it, never through
``Path(__file__).parent...`` (tests move between folders), and read nothing outside it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collabdnn.testbed.certs import CertPair
    from collabdnn.testbed.procs import Service

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
MODEL = "alexnet"
WEIGHTS = "seed:0"
COMMON = ["--model", MODEL, "--weights", WEIGHTS, "--threads", "1"]


def stop_cleanly(service: Service) -> None:
    """SIGTERM must end a service gracefully, with exit status 0."""
    assert service.stop() == 0, f"{service.name} did not stop cleanly:\n{service.log_tail()}"


def tiny_png(side: int = 8) -> bytes:
    """A small valid PNG: an image that decodes, for the limit and refusal tests."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (40, 90, 160)).save(buffer, "PNG")
    return buffer.getvalue()


def image_folder(root: Path, photos: list[bytes]) -> Path:
    """Two classes of crops of the sample photos, and files that are not images."""
    from PIL import Image

    folder = root / "data"
    for index, data in enumerate(photos):
        image = Image.open(io.BytesIO(data)).convert("RGB")
        label = folder / ("even" if index % 2 == 0 else "odd")
        label.mkdir(parents=True, exist_ok=True)
        w, h = image.size
        for k, box in enumerate([(0, 0, w // 2, h // 2), (w // 2, h // 2, w, h)]):
            image.crop(box).save(label / f"{index}-{k}.jpg", quality=90)
    (folder / "odd" / "empty.png").write_bytes(b"")
    (folder / "odd" / "text.jpg").write_bytes(b"not a photo at all")
    (folder / "even" / "truncated.jpg").write_bytes(
        (folder / "even" / "0-0.jpg").read_bytes()[:300]
    )
    (folder / "even" / "notes.txt").write_text("not counted: not an image suffix")
    return folder


def make_pki(folder: Path, *names: str) -> dict[str, CertPair]:
    """The TLS tests' certificates: ``"ca"`` (a test CA under ``folder/ca``) and one
    certificate signed by it per name (for localhost and 127.0.0.1); ``"other_ca"``, a
    second CA ("another-ca", under ``folder/other``), and ``"rogue"``, a certificate it
    signed, which whoever trusts only ``"ca"`` must refuse."""
    from collabdnn.testbed.certs import make_ca, make_cert

    ca = make_ca(folder / "ca")
    other = make_ca(folder / "other", "another-ca")
    pki = {"ca": ca, "other_ca": other, "rogue": make_cert(folder / "other", other, "rogue")}
    pki.update({name: make_cert(folder / "ca", ca, name) for name in names})
    return pki
