//! Arbitrary bytes as a jokes file: the scanner, the spans, the served form and the UTF-8
//! check must keep every rule of `joke_index::invariants::check`, whatever the input.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    joke_index::invariants::check(input);
});
