"""Compact binary blobs for a feature's or an example's arrays (one column, exact round trip).

Layout: 4-byte little-endian header length, a JSON header [[name, dtype, shape], ...],
then each array's bytes in that order. Smaller and much faster to decode than JSON
numbers, and the dtype survives, so float32 values come back bit for bit.
"""

from __future__ import annotations

import functools
import json
import math
import struct

import numpy as np


def pack_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    layout = []
    chunks: list[bytes | memoryview] = [b""]  # the header goes first
    for name, array in arrays.items():
        # called once per example (a million times in a large write): convert only what needs it
        if array.ndim == 0 or not array.flags.c_contiguous:
            array = np.ascontiguousarray(array)  # (0-d becomes [1], as it always was stored)
        layout.append((name, array.dtype, array.shape))
        chunks.append(array.data)  # joined straight from its buffer, no tobytes() copy
    chunks[0] = _header(tuple(layout))
    return b"".join(chunks)


@functools.lru_cache(maxsize=1024)
def _header(layout: tuple[tuple[str, np.dtype, tuple[int, ...]], ...]) -> bytes:
    """The length-prefixed JSON header of a layout: hundreds of thousands of examples share a few.
    Keyed by dtype objects: reading dtype.str costs more than the cache lookup."""
    head = json.dumps(
        [[name, dtype.str, list(shape)] for name, dtype, shape in layout], separators=(",", ":")
    ).encode()
    return struct.pack("<I", len(head)) + head


def unpack_arrays(blob: bytes) -> dict[str, np.ndarray]:
    blob = bytes(blob)  # PostgreSQL drivers hand back memoryview
    (head_len,) = struct.unpack_from("<I", blob)
    offset = 4 + head_len
    arrays = {}
    for name, dtype, shape in json.loads(blob[4:offset]):
        dtype = np.dtype(dtype)
        count = math.prod(shape)
        arrays[name] = np.frombuffer(blob, dtype, count, offset).reshape(shape)
        offset += count * dtype.itemsize
    return arrays
