//! The tests every act passes (see `joke_testkit::conformance`).

joke_testkit::act_conformance_tests! {
    act: act2_spawn_blocking::SpawnBlocking::default(),
    binary: env!("CARGO_BIN_EXE_act2-spawn-blocking"),
    io: OffTheWorkers,
}
