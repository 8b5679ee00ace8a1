//! Shared helpers for squall's benchmarks.
