//! Fuzzes the option-line parser: any text a payload can carry in an option line must parse to a line (or
//! "other") without panicking, and the value it reads must be one of the numbers in the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maple_gateway_fuzz::expectation::{LineValue, OptionLine};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let line = OptionLine::parse(text);
    let _ = line.is_other();
    let _ = line.value();
    let _ = line.kind_and_amount();
    let _ = LineValue::read(text).kind_and_amount();
});
