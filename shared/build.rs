//! Turns the common-password list into the table the binary carries: the sorted 32-bit
//! FNV-1a hashes of its entries, little-endian (4 bytes an entry instead of the text's 8;
//! `identity::password` searches it). Only for builds with the `identity` feature.

use std::{env, fs, path::PathBuf};

const LIST: &str = "src/identity/common-passwords.txt";

/// 32-bit FNV-1a; `identity::password::fnv1a` is the same function.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash: u32, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn main() {
    println!("cargo::rerun-if-changed={LIST}");
    println!("cargo::rerun-if-changed=build.rs");
    if env::var_os("CARGO_FEATURE_IDENTITY").is_none() {
        return;
    }
    let text = fs::read_to_string(LIST).expect("the common-password list is readable");
    let mut hashes: Vec<u32> = text.lines().map(|l| fnv1a(l.as_bytes())).collect();
    hashes.sort_unstable();
    hashes.dedup();
    let bytes: Vec<u8> = hashes.iter().flat_map(|h| h.to_le_bytes()).collect();
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("common-password-hashes.bin"), bytes).expect("OUT_DIR is writable");
}
