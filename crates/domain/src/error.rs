/// A value that does not have the shape the pipeline needs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DomainError {
    #[error(
        "invalid coin id {0:?}: use a CoinGecko API id such as `bitcoin` (lowercase letters, digits and `-`, at most 100 characters)"
    )]
    InvalidCoinId(String),
    #[error("invalid currency {0:?}: use a CoinGecko vs_currency such as `usd` (2 to 10 lowercase letters)")]
    InvalidCurrency(String),
}
