"""Position arithmetic of a power-of-two ring."""


def slot(pos: int, chunks: int) -> int:
    """The slot of a monotonic position."""
    return pos & (chunks - 1)


def frame_chunks(payload_len: int, chunk_bytes: int, header: int = 32) -> int:
    """Chunks a frame occupies."""
    return -(-(header + payload_len) // chunk_bytes)
