//! Finds the chart library that the site ships: uPlot, installed from the npm
//! registry by `npm ci` in `site-gen/web` (pinned by its package-lock.json).
//! The files are embedded in the binary, so the Lambda needs no files beside it
//! and the site needs no CDN.

use std::path::{Path, PathBuf};
use std::process::Command;

const FILES: [(&str, &str); 2] =
    [("UPLOT_JS", "uplot/dist/uPlot.iife.min.js"), ("UPLOT_CSS", "uplot/dist/uPlot.min.css")];

fn main() {
    let web = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("web");
    let modules = web.join("node_modules");
    println!("cargo:rerun-if-changed={}", web.join("package-lock.json").display());
    if !FILES.iter().all(|(_, f)| modules.join(f).is_file()) {
        install(&web);
    }
    for (var, file) in FILES {
        let path = modules.join(file);
        if !path.is_file() {
            panic!(
                "{} is missing: run `npm ci --prefix site-gen/web` (scripts/bootstrap.sh does it)",
                path.display()
            );
        }
        println!("cargo:rerun-if-changed={}", path.display());
        println!("cargo:rustc-env={var}={}", path.display());
    }
}

/// A fresh clone builds without a separate step when npm is on PATH.
fn install(web: &Path) {
    let status = Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(web)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => println!("cargo:warning=`npm ci` in {} failed ({s})", web.display()),
        Err(e) => println!("cargo:warning=cannot run npm ({e}); install Node.js and npm"),
    }
}
