//! Links the `kiln` executable as a plain (not position-independent) executable on Linux.
//! A position-independent one applies about 36,000 relocations at every start and copies
//! each page they touch: about 170 page faults and half a millisecond of a command such
//! as `kiln bake --print` that takes 4 to 5 ms in all (docs/performance.md). What is given
//! up is the random load address of the executable itself (libraries, stack and heap stay
//! randomised); `KILN_PIE=1 cargo build` keeps it.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=KILN_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if linux && std::env::var_os("KILN_PIE").is_none() {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
