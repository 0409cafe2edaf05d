//! strfile(8) `.dat` files: written byte-identical to Debian's `strfile`, and read back.
//! (Being written.)
