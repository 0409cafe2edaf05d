//! What the book says about Tokio's cooperative budget, checked against the Tokio this
//! workspace builds with: a channel's receiver and the budget (finding-blocking.md, where these
//! facts explain why tokio-console lagged behind Act I, and act4-custom-future.md), and
//! `block_in_place` (act2-spawn-blocking.md). If a Tokio release changes one of them, this
//! fails and the chapter needs another look.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use tokio::sync::mpsc;

/// More messages than one poll's budget (128) can take in.
const WAITING: u32 = 1000;

/// A channel with [`WAITING`] messages in it, and its sender (drop it, or keep it open so that
/// an empty channel answers "not yet" rather than "closed").
fn full_channel() -> (mpsc::Sender<u32>, mpsc::Receiver<u32>) {
    let (sender, receiver) = mpsc::channel(WAITING as usize);
    for message in 0..WAITING {
        sender.try_send(message).unwrap();
    }
    (sender, receiver)
}

/// Counts the wake-ups it is asked for.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Takes in messages the way console-subscriber's aggregator does: `poll_recv` in a loop,
/// never awaiting, until the receiver says "not yet". Returns how many it took.
fn drain_by_polling(receiver: &mut mpsc::Receiver<u32>, waker: &Waker) -> u32 {
    let mut context = Context::from_waker(waker);
    let mut taken = 0;
    while let Poll::Ready(Some(_)) = receiver.poll_recv(&mut context) {
        taken += 1;
    }
    taken
}

/// Each receive spends a unit of the task's budget, 128 per poll of the task; then the
/// receiver answers "not yet" with messages still waiting, and asks for a wake-up through the
/// waker it was given, so that the task comes back for them. (Inside a runtime Tokio defers
/// that wake-up until the poll has ended, so it is counted after the task.)
#[tokio::test]
async fn a_receive_spends_budget_and_the_receiver_asks_for_a_wake_up_when_it_is_gone() {
    let waker = Arc::new(CountingWaker::default());
    let inside = Arc::clone(&waker);
    let (taken, wakes_during_the_poll, still_waiting) = tokio::spawn(async move {
        let (_, mut receiver) = full_channel();
        let taken = drain_by_polling(&mut receiver, &Waker::from(Arc::clone(&inside)));
        (taken, inside.0.load(Ordering::SeqCst), receiver.len())
    })
    .await
    .unwrap();
    assert_eq!(taken, 128, "messages one poll of a task took in");
    assert_eq!(still_waiting, (WAITING - 128) as usize);
    assert_eq!(wakes_during_the_poll, 0);
    assert_eq!(
        waker.0.load(Ordering::SeqCst),
        1,
        "wake-ups asked for when the budget ran out"
    );
}

/// The aggregator polls with a waker that does nothing, so that wake-up reaches no one: the
/// task is not polled again until something else wakes it.
#[tokio::test]
async fn polled_with_a_do_nothing_waker_the_rest_waits_for_the_next_wake_up() {
    let (first, second) = tokio::spawn(async {
        let (_, mut receiver) = full_channel();
        let first = drain_by_polling(&mut receiver, Waker::noop());
        // The next poll of the task (here, after a yield) has a new budget.
        tokio::task::yield_now().await;
        (first, drain_by_polling(&mut receiver, Waker::noop()))
    })
    .await
    .unwrap();
    assert_eq!((first, second), (128, 128));
}

/// `try_recv` spends no budget: one poll takes in everything waiting.
#[tokio::test]
async fn try_recv_spends_no_budget() {
    let taken = tokio::spawn(async {
        let (_, mut receiver) = full_channel();
        let mut taken = 0;
        while receiver.try_recv().is_ok() {
            taken += 1;
        }
        taken
    })
    .await
    .unwrap();
    assert_eq!(taken, WAITING);
}

/// `tokio::task::unconstrained` exempts a future from the budget: the same loop takes in
/// everything, however long that takes (which is what froze the console under Act II).
#[tokio::test]
async fn unconstrained_the_loop_takes_everything() {
    let taken = tokio::spawn(tokio::task::unconstrained(async {
        let (_, mut receiver) = full_channel();
        drain_by_polling(&mut receiver, Waker::noop())
    }))
    .await
    .unwrap();
    assert_eq!(taken, WAITING);
}

/// `block_in_place` switches the budget off inside its closure and puts it back afterwards: a
/// task that has spent its budget takes in all the rest inside the closure, and after it is
/// back to a spent budget (its sender still open, so "not yet" is the budget's answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_in_place_switches_the_budget_off_inside_and_restores_it_after() {
    let (before, inside, after) = tokio::spawn(async {
        let (sender, mut receiver) = full_channel();
        let before = drain_by_polling(&mut receiver, Waker::noop());
        let inside = tokio::task::block_in_place(|| drain_by_polling(&mut receiver, Waker::noop()));
        for message in 0..10 {
            sender.try_send(message).unwrap();
        }
        (
            before,
            inside,
            drain_by_polling(&mut receiver, Waker::noop()),
        )
    })
    .await
    .unwrap();
    assert_eq!((before, inside, after), (128, WAITING - 128, 0));
}

/// On a current-thread runtime there is no other thread to hand the core to, and
/// `block_in_place` panics.
#[test]
fn block_in_place_panics_on_a_current_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let outcome =
        runtime.block_on(async { std::panic::catch_unwind(|| tokio::task::block_in_place(|| ())) });
    assert!(
        outcome.is_err(),
        "block_in_place returned on a current-thread runtime"
    );
}
