//! Parse + evaluate + resolve + print any input; nothing may panic.
//! The input is one bake file; its first byte picks HCL or JSON syntax and a few options.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kiln_bake::fuzz_one(data);
});
