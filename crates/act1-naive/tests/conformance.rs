//! The tests every act passes (see `joke_testkit::conformance`).

joke_testkit::act_conformance_tests! {
    act: act1_naive::Naive,
    binary: env!("CARGO_BIN_EXE_act1-naive"),
    io: OnTheWorker,
}
