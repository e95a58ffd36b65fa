"""Reader for the IDX format of MNIST / Fashion-MNIST (LeCun's ``*-idx3-ubyte`` / ``*-idx1-ubyte``).

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian
uint32 dimension sizes, then the data in C order, big-endian. MNIST's images have magic
``0x00000803`` (unsigned bytes, 3 dims ``[N, 28, 28]``), its labels ``0x00000801`` (unsigned
bytes, 1 dim ``[N]``). Files may be gzipped (detected from the gzip signature, not the name).

Everything is validated before any training: the magic, the header length and that the number
of data bytes is exactly the product of the dimensions, so a truncated or padded file is a
:class:`~lit_snn.data.errors.CorruptDataError` naming the file, never a crash mid-epoch.
"""

from __future__ import annotations

import gzip
import zlib

import numpy as np

from ..errors import ConfigError
from .errors import CorruptDataError

IMAGES_MAGIC = 0x00000803  # ubyte, 3 dims
LABELS_MAGIC = 0x00000801  # ubyte, 1 dim

# IDX type byte -> numpy dtype (big-endian for the multi-byte types)
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_SIGNATURE = b"\x1f\x8b"


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:2] != _GZIP_SIGNATURE:
        return blob
    try:
        return gzip.decompress(blob)
    except (EOFError, OSError, zlib.error) as e:  # truncated or damaged gzip stream
        raise CorruptDataError(path, f"cannot decompress gzip ({type(e).__name__}: {e})") from None


def parse_idx(blob: bytes, path: str = "<bytes>", expect_magic: int | None = None) -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file into an array of its dims and dtype.

    ``expect_magic``: the required magic number (e.g. :data:`IMAGES_MAGIC`); any other is a
    :class:`CorruptDataError`, as are a short header and a data length that differs from the
    product of the dims.
    """
    if len(blob) < 4:
        raise CorruptDataError(path, f"{len(blob)} bytes, too short for an IDX magic number")
    magic = int.from_bytes(blob[:4], "big")
    zero, type_code, ndim = blob[0] << 8 | blob[1], blob[2], blob[3]
    if expect_magic is not None and magic != expect_magic:
        raise CorruptDataError(
            path, f"wrong IDX magic number 0x{magic:08X}, expected 0x{expect_magic:08X}"
        )
    if zero != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise CorruptDataError(path, f"not an IDX file (magic number 0x{magic:08X})")
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise CorruptDataError(path, f"truncated header: {len(blob)} bytes, need {header} for {ndim} dims")
    dims = tuple(int(d) for d in np.frombuffer(blob, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(blob) - header
    if got != expected:
        what = "truncated" if got < expected else "trailing bytes"
        raise CorruptDataError(
            path, f"{what}: header dims {list(dims)} need {expected} data bytes, file has {got}"
        )
    return np.frombuffer(blob, dtype=dtype, offset=header).reshape(dims)


def read_idx(path: str, expect_magic: int | None = None) -> np.ndarray:
    """Read one IDX file (plain or gzipped) -> read-only numpy array, validated (see :func:`parse_idx`)."""
    return parse_idx(_read_bytes(path), path, expect_magic)


def read_idx_images(path: str, size: tuple[int, int] | None = (28, 28)) -> np.ndarray:
    """uint8 images ``[N, H, W]`` from an ``idx3-ubyte`` file; ``size`` (if given) is enforced."""
    x = read_idx(path, IMAGES_MAGIC)
    if size is not None and tuple(x.shape[1:]) != tuple(size):
        raise CorruptDataError(path, f"images are {x.shape[1]}x{x.shape[2]}, expected {size[0]}x{size[1]}")
    return x


def read_idx_labels(path: str, num_classes: int | None = None) -> np.ndarray:
    """int64 labels ``[N]`` from an ``idx1-ubyte`` file; values checked against ``num_classes``."""
    y = read_idx(path, LABELS_MAGIC).astype(np.int64)
    if num_classes is not None and len(y) and y.max() >= num_classes:
        raise CorruptDataError(path, f"labels outside [0, {num_classes}): max {y.max()}")
    return y


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of ``array`` (uint8 / int8 / int16 / int32 / float32 / float64); inverse of
    :func:`parse_idx`. Handy to write one's own data in MNIST's format."""
    a = np.asarray(array)
    match = [(c, dt) for c, dt in IDX_DTYPES.items()
             if a.dtype.kind == dt.kind and a.dtype.itemsize == dt.itemsize]
    if not match:
        raise ConfigError(f"dtype {a.dtype} has no IDX type code")
    code, dt = match[0]
    head = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes()
    return head + np.ascontiguousarray(a, dtype=dt).tobytes()
