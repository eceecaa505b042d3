//! Builds tests/c/example.{c,cpp} with gcc and g++ against include/flashsampling.h and both
//! libflashsampling.so and libflashsampling.a, runs them on the CPU backend and on wgpu where it
//! opens, and runs the C example under valgrind when valgrind is installed. Then installs with
//! ffi/install.sh and builds the examples through pkg-config and CMake's find_package.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Exit code of an example whose backend is not available on this machine.
const SKIP: i32 = 77;

/// System libraries the Rust standard library needs when linked statically.
const STATIC_DEPS: [&str; 3] = ["-lpthread", "-ldl", "-lm"];

/// target/<profile>/ after building the cdylib and staticlib there: `cargo test` builds neither
/// for an integration test, so the test asks cargo (the same one, same profile) for them, once
/// per process: a rebuild re-links the files that a parallel test may be reading.
fn lib_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
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
        })
        .clone()
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

/// Compiles `source` with `compiler`, linked to the shared library or the static one. `test`
/// keeps the executables of tests running in parallel apart.
fn build(test: &str, compiler: &str, std: &str, source: &str, shared: bool) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let libs = lib_dir();
    let name = format!("{test}-{}-{}", source.replace(['/', '.'], "_"), if shared { "so" } else { "a" });
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
            check_on_backends(&build("examples", compiler, std, source, shared));
        }
    }
}

#[test]
fn c_example_is_clean_under_valgrind() {
    if !available("valgrind") || !available("gcc") {
        println!("valgrind or gcc not installed: skipped");
        return;
    }
    let exe = build("valgrind", "gcc", "-std=c11", "tests/c/example.c", true);
    // rayon's global pool threads are never joined: their stacks are "possibly lost", not leaks.
    let code = run(Command::new("valgrind")
        .args(["--error-exitcode=1", "--leak-check=full", "--errors-for-leak-kinds=definite", "-q"])
        .arg(&exe)
        .arg("cpu"));
    assert_eq!(code, 0, "valgrind reported errors");
}

#[test]
fn installed_package_works_with_pkg_config_and_cmake() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).join("install");
    let code = run(Command::new("bash")
        .arg(root.join("ffi/install.sh"))
        .arg(&prefix)
        .env("NO_BUILD", "1")
        .env("LIB_DIR", lib_dir()));
    assert_eq!(code, 0, "ffi/install.sh failed");

    if available("pkg-config") && available("gcc") {
        let flags = Command::new("pkg-config")
            .args(["--cflags", "--libs", "flashsampling"])
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
            .output()
            .unwrap();
        assert!(flags.status.success(), "pkg-config does not find flashsampling.pc");
        let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join("example-pkg-config");
        let mut gcc = Command::new("gcc");
        gcc.arg("-std=c11").arg(root.join("tests/c/example.c")).arg("-o").arg(&exe);
        gcc.args(String::from_utf8(flags.stdout).unwrap().split_whitespace());
        gcc.arg("-lm").arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()));
        assert_eq!(run(&mut gcc), 0, "building through pkg-config failed");
        assert_eq!(run(Command::new(&exe).arg("cpu")), 0);
    } else {
        println!("pkg-config or gcc not installed: pkg-config check skipped");
    }

    if available("cmake") {
        let build = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cmake-build");
        let _ = std::fs::remove_dir_all(&build);
        let configure = run(Command::new("cmake")
            .arg("-S")
            .arg(root.join("tests/c"))
            .arg("-B")
            .arg(&build)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())));
        assert_eq!(configure, 0, "cmake configure failed");
        assert_eq!(run(Command::new("cmake").arg("--build").arg(&build)), 0, "cmake build failed");
        for exe in ["example_c", "example_cpp_static"] {
            assert_eq!(run(Command::new(build.join(exe)).arg("cpu")), 0, "{exe} failed");
        }
    } else {
        println!("cmake not installed: find_package check skipped");
    }
}
