//! Shared helpers for the integration, system and stress tests.
