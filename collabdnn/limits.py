"""Default bounds on untrusted input, torch-free so that command-line help can show them.

Every service checks what it is sent against these (or the values its flags give)
before spending memory or time on it; docs/failure.md lists them all.
"""

from __future__ import annotations

DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024  # encoded image: any real photo fits
DEFAULT_MAX_PIXELS = 40_000_000  # 40 MP: any real photo; far below a decompression bomb
DEFAULT_MAX_SIDE = 16_384  # longest side: any real photo, phone panoramas included
DEFAULT_MAX_ASPECT = 20.0  # longest / shortest side: a wide panorama is ~10
MIN_SIDE = 8  # narrower images carry nothing a 224x224 crop could use
