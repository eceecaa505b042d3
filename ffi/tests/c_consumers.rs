//! Builds tests/c/example.{c,cpp} with gcc and g++ against include/flashsampling.h and both
//! libflashsampling.so and libflashsampling.a, runs them on the CPU backend and on wgpu where it
//! opens, and runs the C example under valgrind when valgrind is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Exit code of an example whose backend is not available on this machine.
const SKIP: i32 = 77;

/// System libraries the Rust standard library needs when linked statically.
const STATIC_DEPS: [&str; 3] = ["-lpthread", "-ldl", "-lm"];

/// target/<profile>/ after building the cdylib and staticlib there: `cargo test` builds neither
/// for an integration test, so the test asks cargo (the same one, same profile) for them.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args([
        "build",
        "-p",
        "flashsampling-ffi",
        "--manifest-path",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
    ]);
    cargo.env("CARGO_TARGET_DIR", dir.parent().unwrap());
    if dir.ends_with("release") {
        cargo.arg("--release");
    }
    assert_eq!(run(&mut cargo), 0, "building libflashsampling failed");
    dir
}

fn available(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> i32 {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("$ {cmd:?}\n{text}");
    out.status.code().unwrap_or_else(|| panic!("{cmd:?} was killed by a signal:\n{text}"))
}

/// Compiles `source` with `compiler`, linked to the shared library or the static one.
fn build(compiler: &str, std: &str, source: &str, shared: bool) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let libs = lib_dir();
    let name = format!("{}-{}", source.replace(['/', '.'], "_"), if shared { "so" } else { "a" });
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let mut cmd = Command::new(compiler);
    cmd.args([std, "-Wall", "-Wextra", "-Werror", "-o"]).arg(&exe).arg("-I").arg(root.join("include"));
    cmd.arg(root.join(source));
    if shared {
        cmd.arg("-L").arg(&libs).arg("-lflashsampling").arg(format!("-Wl,-rpath,{}", libs.display()));
    } else {
        cmd.arg(libs.join("libflashsampling.a")).args(STATIC_DEPS);
    }
    cmd.arg("-lm");
    assert_eq!(run(&mut cmd), 0, "{compiler} failed on {source}");
    exe
}

fn check_on_backends(exe: &Path) {
    for backend in ["cpu", "wgpu"] {
        match run(Command::new(exe).arg(backend)) {
            0 => {}
            SKIP if backend != "cpu" => println!("{backend} is not available here: skipped"),
            code => panic!("{} {backend} exited with {code}", exe.display()),
        }
    }
}

#[test]
fn c_and_cpp_examples_run_against_both_libraries() {
    for (compiler, std, source) in
        [("gcc", "-std=c11", "tests/c/example.c"), ("g++", "-std=c++17", "tests/c/example.cpp")]
    {
        if !available(compiler) {
            println!("{compiler} not installed: {source} skipped");
            continue;
        }
        for shared in [true, false] {
            check_on_backends(&build(compiler, std, source, shared));
        }
    }
}

#[test]
fn c_example_is_clean_under_valgrind() {
    if !available("valgrind") || !available("gcc") {
        println!("valgrind or gcc not installed: skipped");
        return;
    }
    let exe = build("gcc", "-std=c11", "tests/c/example.c", true);
    // rayon's global pool threads are never joined: their stacks are "possibly lost", not leaks.
    let code = run(Command::new("valgrind")
        .args(["--error-exitcode=1", "--leak-check=full", "--errors-for-leak-kinds=definite", "-q"])
        .arg(&exe)
        .arg("cpu"));
    assert_eq!(code, 0, "valgrind reported errors");
}
