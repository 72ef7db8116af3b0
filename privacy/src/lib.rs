//! Differential privacy for cairn.
