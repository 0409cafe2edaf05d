//! The tests every act passes (see `joke_testkit::conformance`).

joke_testkit::act_conformance_tests! {
    act: act5_channel::Channel,
    binary: env!("CARGO_BIN_EXE_act5-channel"),
    io: OffTheWorkers,
}
