//! Feeds arbitrary bytes to the row validation of each contract table: the first byte picks
//! the table, the rest is its CSV (after a valid header, so the fuzzer reaches the rows).
//! Whatever the bytes, validation must return a verdict per row or a clean error, and the
//! problem rows can never outnumber the rows read.

#![no_main]

use kith::intake::check::check_csv_bytes;
use kith::intake::contract::TABLES;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let table = &TABLES[usize::from(pick) % TABLES.len()];
    let mut bytes = table.header().into_bytes();
    bytes.push(b'\n');
    bytes.extend_from_slice(body);
    if let Ok(check) = check_csv_bytes(table, &bytes, 4) {
        assert!(check.problem_rows() <= check.rows);
    }
    // Headers are fuzzed too: the raw bytes as a whole file.
    let _ = check_csv_bytes(table, body, 4);
});
