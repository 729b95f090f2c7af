//! Skeleton: filled in by the adapter issues.
