//! The tests every act passes (see `joke_testkit::conformance`).

joke_testkit::act_conformance_tests! {
    act: act6_framed::FramedLines,
    binary: env!("CARGO_BIN_EXE_act6-framed"),
    io: OffTheWorkers,
}
