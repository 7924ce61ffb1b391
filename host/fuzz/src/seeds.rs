//! The seed runner `./dev test` links into the fuzz targets in libFuzzer's
//! place (both fuzz crates built with `--no-default-features`, so no
//! libFuzzer C++ is compiled): `main` runs every file named on the command
//! line, or in a folder named there, once through the target's
//! `fuzz_target!` and exits non-zero when one panics (the target's panic
//! hook aborts) or a path cannot be read. No fuzzing: the seeds only.
//! `cargo fuzz` builds with the default feature, libFuzzer's `main`.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

extern "C" {
    // Both defined by `fuzz_target!` in the target's file.
    fn LLVMFuzzerInitialize(argc: *const isize, argv: *const *const *const u8) -> isize;
    fn LLVMFuzzerTestOneInput(data: *const u8, size: usize) -> i32;
}

thread_local! {
    static RUNNING: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

fn seeds(arg: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !arg.is_dir() {
        return Ok(vec![arg.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(arg)? {
        let path = entry?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let target = std::env::args().next().unwrap_or_default();
    // The target's own set-up: a panic hook that aborts.
    unsafe { LLVMFuzzerInitialize(std::ptr::null(), std::ptr::null()) };
    let aborting = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(seed) = RUNNING.with(|r| r.borrow().clone()) {
            eprintln!("fuzz seed {} panicked in {target}:", seed.display());
        }
        aborting(info);
    }));
    let mut ran = 0;
    for arg in std::env::args_os().skip(1) {
        let files = match seeds(Path::new(&arg)) {
            Ok(files) => files,
            Err(e) => {
                eprintln!("fuzz seeds {}: {e}", Path::new(&arg).display());
                return 1;
            }
        };
        for file in files {
            let data = match std::fs::read(&file) {
                Ok(data) => data,
                Err(e) => {
                    eprintln!("fuzz seed {}: {e}", file.display());
                    return 1;
                }
            };
            RUNNING.with(|r| *r.borrow_mut() = Some(file));
            unsafe { LLVMFuzzerTestOneInput(data.as_ptr(), data.len()) };
            ran += 1;
        }
    }
    RUNNING.with(|r| *r.borrow_mut() = None);
    println!("{ran}");
    0
}
