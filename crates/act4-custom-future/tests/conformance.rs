//! The tests every act passes (see `joke_testkit::conformance`).

joke_testkit::act_conformance_tests! {
    act: act4_custom_future::HandWritten,
    binary: env!("CARGO_BIN_EXE_act4-custom-future"),
    io: OffTheWorkers,
}
