//! The tests every act passes (see `joke_testkit::conformance`).

joke_testkit::act_conformance_tests! {
    act: act7_tokio_fs::TokioFs,
    binary: env!("CARGO_BIN_EXE_act7-tokio-fs"),
    io: OffTheWorkers,
}
