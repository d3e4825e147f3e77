//! Shared helpers for overlap's benchmarks.
