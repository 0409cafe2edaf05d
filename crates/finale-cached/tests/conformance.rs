//! The tests every act passes (see `joke_testkit::conformance`).

joke_testkit::act_conformance_tests! {
    act: finale_cached::Cached::default(),
    binary: env!("CARGO_BIN_EXE_finale-cached"),
    io: NoFileIo,
}
