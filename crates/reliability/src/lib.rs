//! Reliability tests for every act: this crate has no code of its own, only `tests/`.
//!
//! - `live_edits`: the jokes file is rewritten in place, replaced by rename and emptied while
//!   clients keep asking; no client may ever receive a torn joke, and the last version must
//!   take effect without a restart.
//! - `hostile_clients`: idle clients beside a burst, and a client that never reads.
