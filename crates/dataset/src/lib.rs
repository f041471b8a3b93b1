//! The market data the project ships in `data/` (real Binance hourly candles
//! and real CoinGecko responses, gzip-compressed): where it is and how to read
//! it. Tests, `cpctl replay`/`load-history`, the first-run history of
//! `just deploy-local` and the benchmarks all read it through here.
//!
//! The folder is found at run time, never baked in at compile time: a clone
//! may have moved since it was built, and a test runs with the package's
//! folder as its working directory. `CRYPTO_DATA_DIR` names another folder of
//! the same layout; plain and `.gz` files are both read.

mod candles;
mod error;

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

pub use candles::{CANDLE_FIRST_OPEN, CANDLE_LAST_OPEN, CANDLE_ROWS, Candle, coin_of_file, read_candles};
pub use error::{DatasetError, RowError};

/// The variable that names a data folder other than the project's `data/`.
pub const DATA_DIR_VAR: &str = "CRYPTO_DATA_DIR";

/// A folder laid out like the project's `data/` (`binance_1h/`, `coingecko/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// `CRYPTO_DATA_DIR` when set, otherwise the `data/` folder of the project
    /// that holds the current directory.
    pub fn locate() -> Result<Self, DatasetError> {
        let var = std::env::var_os(DATA_DIR_VAR);
        let cwd =
            std::env::current_dir().map_err(|source| DatasetError::Read { path: ".".into(), source })?;
        Self::resolve(var.as_deref().map(Path::new), &cwd)
    }

    /// [`DataDir::locate`] without the environment: `var` is `CRYPTO_DATA_DIR`'s value.
    pub fn resolve(var: Option<&Path>, cwd: &Path) -> Result<Self, DatasetError> {
        match var {
            Some(dir) if dir.as_os_str().is_empty() => Err(DatasetError::EmptyVariable),
            Some(dir) if dir.is_dir() => Ok(Self { root: dir.to_path_buf() }),
            Some(dir) => Err(DatasetError::NotAFolder(dir.to_path_buf())),
            // The project's data/ is recognised by its checksum file, so an
            // unrelated `data/` folder higher up is never taken for it.
            None => cwd
                .ancestors()
                .map(|dir| dir.join("data"))
                .find(|data| data.join("SHA256SUMS").is_file() && data.join("binance_1h").is_dir())
                .map(|root| Self { root })
                .ok_or_else(|| DatasetError::NotFound { searched_from: cwd.to_path_buf() }),
        }
    }

    /// A data folder at `root`, taken as it is.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file `relative` (e.g. `coingecko/dashbrd_coins_markets.json`), or
    /// its compressed form `relative.gz`, whichever exists.
    pub fn file(&self, relative: &str) -> Result<PathBuf, DatasetError> {
        let plain = self.root.join(relative);
        if plain.is_file() {
            return Ok(plain);
        }
        let gz = self.root.join(format!("{relative}.gz"));
        if gz.is_file() { Ok(gz) } else { Err(DatasetError::Missing(plain)) }
    }

    /// The whole content of `relative`, decompressed.
    pub fn read(&self, relative: &str) -> Result<Vec<u8>, DatasetError> {
        let path = self.file(relative)?;
        let mut out = Vec::new();
        open(&path)?.read_to_end(&mut out).map_err(|source| DatasetError::Read { path, source })?;
        Ok(out)
    }

    /// The candle files of `binance_1h/` (`*.csv` or `*.csv.gz`), sorted by name.
    pub fn candle_files(&self) -> Result<Vec<PathBuf>, DatasetError> {
        let dir = self.root.join("binance_1h");
        let entries =
            std::fs::read_dir(&dir).map_err(|source| DatasetError::Read { path: dir.clone(), source })?;
        let mut files: Vec<PathBuf> =
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_csv(p)).collect();
        files.sort();
        Ok(files)
    }
}

fn is_csv(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.ends_with(".csv") || name.ends_with(".csv.gz")
}

/// A reader of `path`'s content, decompressed when the name ends in `.gz`.
pub fn open(path: &Path) -> Result<Box<dyn Read + Send>, DatasetError> {
    let file = std::fs::File::open(path)
        .map_err(|source| DatasetError::Read { path: path.to_path_buf(), source })?;
    let reader = BufReader::with_capacity(1 << 16, file);
    Ok(if path.extension().is_some_and(|x| x == "gz") {
        Box::new(flate2::bufread::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dataset-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_variable_wins_and_is_checked() {
        let dir = scratch("var");
        assert_eq!(DataDir::resolve(Some(&dir), Path::new("/")).unwrap().root(), dir);
        assert!(matches!(DataDir::resolve(Some(Path::new("")), &dir), Err(DatasetError::EmptyVariable)));
        let missing = dir.join("nope");
        let err = DataDir::resolve(Some(&missing), &dir).unwrap_err();
        assert!(err.to_string().contains("CRYPTO_DATA_DIR="), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_project_folder_is_found_from_below_and_only_by_its_checksums() {
        let root = scratch("walk");
        let deep = root.join("crates/x/tests");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir_all(root.join("data/binance_1h")).unwrap();
        // Without SHA256SUMS it is some other data/ folder.
        assert!(matches!(DataDir::resolve(None, &deep), Err(DatasetError::NotFound { .. })));
        std::fs::write(root.join("data/SHA256SUMS"), "").unwrap();
        assert_eq!(DataDir::resolve(None, &deep).unwrap().root(), root.join("data"));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn plain_and_gzip_files_read_the_same() {
        use std::io::Write;
        let root = scratch("gz");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/plain.txt"), b"hello").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"hello").unwrap();
        std::fs::write(root.join("a/packed.txt.gz"), gz.finish().unwrap()).unwrap();
        let data = DataDir::at(&root);
        assert_eq!(data.read("a/plain.txt").unwrap(), b"hello");
        assert_eq!(data.read("a/packed.txt").unwrap(), b"hello");
        assert!(matches!(data.read("a/none.txt"), Err(DatasetError::Missing(_))));
        std::fs::remove_dir_all(root).unwrap();
    }
}
