use std::path::PathBuf;

/// Shipped data that cannot be found or read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("CRYPTO_DATA_DIR is set but empty: unset it to use the project's data/ folder, or name a folder")]
    EmptyVariable,
    #[error("CRYPTO_DATA_DIR={0} is not a folder: point it at a folder laid out like the project's data/")]
    NotAFolder(PathBuf),
    #[error(
        "no market data folder found: run from inside the project (its data/ folder is searched for \
         from {searched_from} upwards), or set CRYPTO_DATA_DIR"
    )]
    NotFound { searched_from: PathBuf },
    #[error("{0} not found (neither the file nor its .gz)")]
    Missing(PathBuf),
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}")]
    Row {
        path: PathBuf,
        line: u64,
        #[source]
        source: RowError,
    },
}

/// What is wrong with one row of a candle file.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error(transparent)]
    Csv(#[from] csv::Error),
    #[error("open_time {value:?} is not a timestamp with an offset")]
    Time {
        value: String,
        #[source]
        source: chrono::ParseError,
    },
}
