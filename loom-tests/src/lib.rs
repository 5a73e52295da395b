//! loom models of the chunkring protocol (built only with `--cfg chunkring_loom`).
