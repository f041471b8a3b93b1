use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use domain::{CoinId, HistoryPoint, MarketSnapshot, VsCurrency};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::ExposeSecret;
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::{info, instrument, warn};
use uuid::Uuid;

use std::collections::HashMap;

use crate::config::{PgConfig, PgSslMode};
use crate::{
    BatchRecord, Chunk, HistoryPresence, HistoryStore, RunLog, RunOutcome, SampleHistory, SnapshotStore,
    StorageError, StoredTick, TickStore,
};

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Arbitrary constant for `pg_advisory_lock`: two processes starting at once
/// (a test run and `just deploy-local`) must not apply migrations concurrently.
const MIGRATION_LOCK: i64 = 0x6372_7970_746f; // "crypto"

/// The Postgres side of storage: a connection pool and the queries.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    target: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("target", &self.target).finish_non_exhaustive()
    }
}

impl PgStore {
    /// Builds the pool and checks one connection, so a wrong URL or a stopped
    /// database fails here with a clear message instead of at the first query.
    /// TLS follows the URL's `sslmode`, else the config's ([`ConnectOptions`]).
    pub async fn connect(config: &PgConfig) -> Result<Self, StorageError> {
        let options = ConnectOptions::new(config)?;
        let target = describe(&options.config);
        let recycling = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = match options.tls()? {
            None => Manager::from_config(options.config, NoTls, recycling),
            Some(tls) => Manager::from_config(options.config, tls, recycling),
        };
        let pool = Pool::builder(manager).max_size(8).build().map_err(|e| StorageError::Connect {
            target: target.clone(),
            hint: UP,
            source: e.into(),
        })?;
        let store = Self { pool, target };
        drop(store.client().await?);
        Ok(store)
    }

    /// The pool, for crates that run their own queries (transforms, site-gen).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// `host:port/database`, never the credentials.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub async fn client(&self) -> Result<Object, StorageError> {
        self.pool.get().await.map_err(|e| {
            let hint = match &e {
                deadpool_postgres::PoolError::Backend(pg) => connect_hint(pg),
                _ => UP,
            };
            StorageError::Connect { target: self.target.clone(), hint, source: e.into() }
        })
    }
}

/// A connection URL, parsed, and how to secure the connection.
///
/// `sslmode` (from the URL, else `PGSSLMODE` of [`PgConfig`], else `prefer`) takes libpq's values:
/// - `disable`: plaintext;
/// - `prefer`: TLS if the server offers it, else plaintext (a local Postgres
///   without TLS); a server that offers TLS must still present a trusted certificate;
/// - `require`, `verify-ca`, `verify-full`: TLS or no connection.
///
/// Whenever TLS is used the certificate chain **and** the host name are
/// verified, as libpq's `verify-full` does: unlike libpq, `require` and
/// `verify-ca` do not weaken that, because this project never turns
/// verification off. Trusted roots are the system's (as the AWS SDK's client
/// uses) plus the PEM file `sslrootcert=PATH` (else `PGSSLROOTCERT`) names: the
/// RDS CA bundle, which public root stores lack. `sslrootcert=system` means
/// the system's alone, as in libpq.
#[derive(Debug)]
pub(crate) struct ConnectOptions {
    pub(crate) config: tokio_postgres::Config,
    root_cert: Option<PathBuf>,
}

impl ConnectOptions {
    pub(crate) fn new(config: &PgConfig) -> Result<Self, StorageError> {
        Self::parse(config.database_url.expose_secret(), config.ssl_mode, config.ssl_root_cert.as_deref())
            .map_err(StorageError::Config)
    }

    /// Parses `url`; `ssl_mode` and `root_cert` (`PGSSLMODE` and
    /// `PGSSLROOTCERT`) apply where it has no `sslmode` or `sslrootcert`. tokio-postgres
    /// knows only `disable`, `prefer` and `require` and no `sslrootcert`, so
    /// those are taken out of the query before it parses the rest.
    ///
    /// The query is split here rather than by `url::Url`, which refuses the
    /// multi-host URLs tokio-postgres takes (`postgres://u@h1:5432,h2:5433/db`)
    /// and decodes `+` as a space where tokio-postgres keeps a plus: the pairs
    /// it reads must reach it as written.
    fn parse(url: &str, ssl_mode: Option<PgSslMode>, root_cert_path: Option<&str>) -> Result<Self, String> {
        let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let (mut sslmode, mut root_cert, mut kept) = (None, None, Vec::new());
        let base = match url.split_once('?') {
            Some((base, query)) if is_url => {
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    match &*decode(key) {
                        "sslmode" => sslmode = Some(decode(value).into_owned()),
                        "sslrootcert" => root_cert = Some(decode(value).into_owned()),
                        _ => kept.push(pair),
                    }
                }
                base
            }
            _ => url,
        };
        let stripped = if kept.is_empty() {
            Cow::Borrowed(base)
        } else {
            Cow::Owned(format!("{base}?{}", kept.join("&")))
        };
        let mut config: tokio_postgres::Config =
            stripped.parse().map_err(|e: tokio_postgres::Error| format!("it does not parse: {e}"))?;
        // A key=value string keeps the sslmode tokio-postgres parsed in it.
        if is_url {
            let mode = match sslmode {
                Some(raw) => PgSslMode::parse(&raw).ok_or_else(|| {
                    format!("sslmode={raw:?} is not supported: use disable, prefer, require, verify-ca or verify-full")
                })?,
                None => ssl_mode.unwrap_or(PgSslMode::Prefer),
            };
            config.ssl_mode(match mode {
                PgSslMode::Prefer => SslMode::Prefer,
                PgSslMode::Disable => SslMode::Disable,
                PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull => SslMode::Require,
            });
        }
        let root_cert = root_cert.filter(|p| !p.is_empty()).or_else(|| root_cert_path.map(str::to_owned));
        Ok(Self { config, root_cert: root_cert.filter(|p| p != "system").map(PathBuf::from) })
    }

    /// The TLS connector, or `None` for `sslmode=disable`.
    pub(crate) fn tls(&self) -> Result<Option<MakeRustlsConnect>, StorageError> {
        if self.config.get_ssl_mode() == SslMode::Disable {
            return Ok(None);
        }
        let target = describe(&self.config);
        let fail = |problem| StorageError::Config(format!("TLS to {target}: {problem}"));
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(system_roots().iter().cloned());
        if let Some(path) = &self.root_cert {
            for cert in ca_bundle(path).map_err(fail)? {
                roots
                    .add(cert)
                    .map_err(|e| fail(format!("a certificate in {} is unusable: {e}", path.display())))?;
            }
        }
        if roots.is_empty() && self.config.get_ssl_mode() == SslMode::Require {
            return Err(fail(String::from(
                "sslmode requires TLS but no CA certificate is trusted: the system has none; \
                 set sslrootcert=PATH in the URL or PGSSLROOTCERT to a PEM bundle",
            )));
        }
        // The provider reqwest and the AWS SDK use; named, so that no process-wide default is needed.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Some(MakeRustlsConnect::new(config)))
    }
}

/// Percent-decoding of a URL query part, as tokio-postgres does.
fn decode(raw: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy()
}

/// The system's CA certificates, read once per process.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        if let Some(first) = found.errors.first() {
            warn!(errors = found.errors.len(), loaded = found.certs.len(), "system CA certificates: {first}");
        }
        found.certs
    })
}

fn ca_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs =
        CertificateDer::pem_file_iter(path).and_then(|certs| certs.collect::<Result<Vec<_>, _>>()).map_err(
            |e| format!("cannot read the CA bundle {} (sslrootcert / PGSSLROOTCERT): {e}", path.display()),
        )?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate (sslrootcert / PGSSLROOTCERT)", path.display()));
    }
    Ok(certs)
}

/// What to try when a connection fails: the default, or, when the server's
/// certificate was refused, how to make it trusted.
pub(crate) const UP: &str = "(is the local stack up? run `just up`)";

pub(crate) fn connect_hint(err: &tokio_postgres::Error) -> &'static str {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        // tokio-rustls hands rustls' error over inside an io::Error.
        let tls = cause
            .downcast_ref::<rustls::Error>()
            .or_else(|| cause.downcast_ref::<std::io::Error>()?.get_ref()?.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::InvalidCertificate(reason)) = tls {
            return match reason {
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. } => {
                    "(the certificate is not for this host name: connect with a name it lists, \
                     for RDS the instance or cluster endpoint)"
                }
                _ => {
                    "(the server's certificate is not trusted: set sslrootcert=PATH in the URL, or \
                     PGSSLROOTCERT, to its CA's PEM bundle, for RDS AWS's global-bundle.pem; \
                     verification is never turned off, but sslmode=disable skips TLS for a local server)"
                }
            };
        }
        source = cause.source();
    }
    UP
}

fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => String::from("localhost"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or("postgres"))
}

/// Applies the migrations in `migrations/` that are not applied yet. Safe to
/// call from several processes at once and on every start.
#[instrument(skip_all, fields(target = store.target()))]
pub async fn migrate(store: &PgStore) -> Result<usize, StorageError> {
    let mut client = store.client().await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| StorageError::query("take the migration lock", e))?;
    let result = embedded::migrations::runner().run_async(&mut **client).await;
    // Unlock whatever happened; the session ends with the connection anyway.
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await;
    let report = result.map_err(StorageError::Migrate)?;
    let applied = report.applied_migrations().len();
    info!(applied, "migrations up to date");
    Ok(applied)
}

impl RunLog for PgStore {
    async fn start_run(&self, function: &str) -> Result<Uuid, StorageError> {
        let run_id = Uuid::new_v4();
        self.client()
            .await?
            .execute("INSERT INTO pipeline_runs (run_id, function) VALUES ($1, $2)", &[&run_id, &function])
            .await
            .map_err(|e| StorageError::query("record the start of a run", e))?;
        Ok(run_id)
    }

    async fn finish_run(&self, run_id: Uuid, outcome: &RunOutcome) -> Result<(), StorageError> {
        self.client()
            .await?
            .execute(
                "UPDATE pipeline_runs
                    SET finished_at = now(), status = $2, rows_in = $3, rows_out = $4, error = $5, details = $6
                  WHERE run_id = $1",
                &[
                    &run_id,
                    &outcome.status.as_str(),
                    &outcome.rows_in,
                    &outcome.rows_out,
                    &outcome.error,
                    &outcome.details,
                ],
            )
            .await
            .map_err(|e| StorageError::query("record the end of a run", e))?;
        Ok(())
    }
}

impl SnapshotStore for PgStore {
    #[instrument(skip_all, fields(rows = snapshots.len()))]
    async fn upsert_snapshots(
        &self,
        run_id: Uuid,
        snapshots: &[MarketSnapshot],
    ) -> Result<u64, StorageError> {
        // One multi-row statement over arrays: one round trip, parameterised.
        let col = |f: fn(&MarketSnapshot) -> Option<f64>| snapshots.iter().map(f).collect::<Vec<_>>();
        let coins: Vec<&str> = snapshots.iter().map(|s| s.coin.as_str()).collect();
        let currencies: Vec<&str> = snapshots.iter().map(|s| s.vs_currency.as_str()).collect();
        let observed: Vec<_> = snapshots.iter().map(|s| s.observed_at).collect();
        let symbols: Vec<&str> = snapshots.iter().map(|s| s.symbol.as_str()).collect();
        let names: Vec<&str> = snapshots.iter().map(|s| s.name.as_str()).collect();
        let ranks: Vec<Option<i32>> = snapshots.iter().map(|s| s.market_cap_rank).collect();
        let inserted = self
            .client()
            .await?
            .execute(
                "INSERT INTO market_snapshots (
                     coin_id, vs_currency, observed_at, symbol, name, current_price, market_cap,
                     market_cap_rank, fully_diluted_valuation, total_volume, high_24h, low_24h,
                     price_change_24h, price_change_percentage_24h, circulating_supply,
                     total_supply, max_supply, run_id)
                 SELECT u.*, $18::uuid FROM UNNEST(
                     $1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[],
                     $6::float8[], $7::float8[], $8::int4[], $9::float8[], $10::float8[],
                     $11::float8[], $12::float8[], $13::float8[], $14::float8[], $15::float8[],
                     $16::float8[], $17::float8[]) AS u
                 ON CONFLICT (coin_id, vs_currency, observed_at) DO NOTHING",
                &[
                    &coins,
                    &currencies,
                    &observed,
                    &symbols,
                    &names,
                    &col(|s| s.current_price),
                    &col(|s| s.market_cap),
                    &ranks,
                    &col(|s| s.fully_diluted_valuation),
                    &col(|s| s.total_volume),
                    &col(|s| s.high_24h),
                    &col(|s| s.low_24h),
                    &col(|s| s.price_change_24h),
                    &col(|s| s.price_change_percentage_24h),
                    &col(|s| s.circulating_supply),
                    &col(|s| s.total_supply),
                    &col(|s| s.max_supply),
                    &run_id,
                ],
            )
            .await
            .map_err(|e| StorageError::query("store market snapshots", e))?;
        Ok(inserted)
    }
}

impl HistoryStore for PgStore {
    async fn completed_chunks(
        &self,
        coin: &CoinId,
        vs_currency: &VsCurrency,
    ) -> Result<Vec<Chunk>, StorageError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT range_start, range_end FROM backfill_chunks
                  WHERE coin_id = $1 AND vs_currency = $2 ORDER BY range_start",
                &[&coin.as_str(), &vs_currency.as_str()],
            )
            .await
            .map_err(|e| StorageError::query("read completed backfill chunks", e))?;
        Ok(rows.iter().map(|r| Chunk { start: r.get(0), end: r.get(1) }).collect())
    }

    #[instrument(skip_all, fields(coin = %coin, rows = points.len()))]
    async fn store_chunk(
        &self,
        coin: &CoinId,
        vs_currency: &VsCurrency,
        chunk: Chunk,
        points: &[HistoryPoint],
    ) -> Result<u64, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| StorageError::query("begin a transaction", e))?;
        let ts: Vec<_> = points.iter().map(|p| p.ts).collect();
        let prices: Vec<_> = points.iter().map(|p| p.price).collect();
        let caps: Vec<_> = points.iter().map(|p| p.market_cap).collect();
        let vols: Vec<_> = points.iter().map(|p| p.total_volume).collect();
        let inserted = tx
            .execute(
                "INSERT INTO market_history (coin_id, vs_currency, ts, price, market_cap, total_volume)
                 SELECT $1, $2, u.* FROM UNNEST($3::timestamptz[], $4::float8[], $5::float8[], $6::float8[]) AS u
                 ON CONFLICT (coin_id, vs_currency, ts) DO NOTHING",
                &[&coin.as_str(), &vs_currency.as_str(), &ts, &prices, &caps, &vols],
            )
            .await
            .map_err(|e| StorageError::query("store history points", e))?;
        let count = i32::try_from(points.len()).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO backfill_chunks (coin_id, vs_currency, range_start, range_end, points)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (coin_id, vs_currency, range_start, range_end)
             DO UPDATE SET points = EXCLUDED.points, completed_at = now()",
            &[&coin.as_str(), &vs_currency.as_str(), &chunk.start, &chunk.end, &count],
        )
        .await
        .map_err(|e| StorageError::query("mark a backfill chunk done", e))?;
        tx.commit().await.map_err(|e| StorageError::query("commit history points", e))?;
        Ok(inserted)
    }
}

impl TickStore for PgStore {
    #[instrument(skip_all, fields(rows = ticks.len(), batch = %batch.run_id))]
    async fn store_ticks(&self, ticks: &[StoredTick], batch: &BatchRecord) -> Result<u64, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| StorageError::query("begin a transaction", e))?;
        let coins: Vec<&str> = ticks.iter().map(|t| t.tick.coin.as_str()).collect();
        let times: Vec<_> = ticks.iter().map(|t| t.tick.event_time).collect();
        let sources: Vec<&str> = ticks.iter().map(|t| t.tick.source.as_str()).collect();
        let prices: Vec<f64> = ticks.iter().map(|t| t.tick.price).collect();
        let volumes: Vec<Option<f64>> = ticks.iter().map(|t| t.tick.volume).collect();
        let intervals: Vec<i32> =
            ticks.iter().map(|t| i32::try_from(t.tick.interval_secs).unwrap_or(i32::MAX)).collect();
        let seqs: Vec<i64> = ticks.iter().map(|t| i64::try_from(t.tick.seq).unwrap_or(i64::MAX)).collect();
        let partitions: Vec<i32> = ticks.iter().map(|t| t.partition).collect();
        let offsets: Vec<i64> = ticks.iter().map(|t| t.offset).collect();
        let inserted = tx
            .execute(
                "INSERT INTO price_ticks (coin_id, event_time, source, price, volume, interval_secs, seq,
                                          kafka_partition, kafka_offset)
                 SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::float8[], $5::float8[],
                                      $6::int4[], $7::int8[], $8::int4[], $9::int8[])
                 ON CONFLICT (coin_id, event_time, source) DO NOTHING",
                &[&coins, &times, &sources, &prices, &volumes, &intervals, &seqs, &partitions, &offsets],
            )
            .await
            .map_err(|e| StorageError::query("store price ticks", e))?;
        let details = serde_json::json!({
            "dead_lettered": batch.dead_lettered,
            "duplicates": ticks.len() as u64 - inserted,
        });
        tx.execute(
            "INSERT INTO pipeline_runs (run_id, function, started_at, finished_at, status, rows_in, rows_out, details)
             VALUES ($1, 'consumer', $2, now(), 'succeeded', $3, $4, $5)",
            &[&batch.run_id, &batch.started_at, &batch.records, &(inserted as i64), &details],
        )
        .await
        .map_err(|e| StorageError::query("record the batch", e))?;
        tx.commit().await.map_err(|e| StorageError::query("commit price ticks", e))?;
        Ok(inserted)
    }
}

impl PgStore {
    /// Loads ticks that never went through Kafka (`just load-history`), in
    /// chunks, each in its own statement; already stored ticks are skipped.
    /// Returns how many were new.
    pub async fn load_ticks(&self, ticks: &[domain::Tick]) -> Result<u64, StorageError> {
        insert_loaded_ticks(&self.client().await?, ticks).await
    }

    /// Stores the shipped candles of one coin as stand-in history (source
    /// `sample`, already moved forward by `sample.shift_secs`) together with
    /// the record of what they really are, in one transaction: the dashboard
    /// never shows sample rows it cannot label. Returns how many were new.
    pub async fn load_sample_history(
        &self,
        sample: &SampleHistory,
        ticks: &[domain::Tick],
    ) -> Result<u64, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| StorageError::query("begin the sample load", e))?;
        let inserted = insert_loaded_ticks(&tx, ticks).await?;
        tx.execute(
            "INSERT INTO sample_history (coin_id, original_from, original_to, shift_secs, candles)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (coin_id) DO UPDATE SET original_from = EXCLUDED.original_from,
                 original_to = EXCLUDED.original_to, shift_secs = EXCLUDED.shift_secs,
                 candles = EXCLUDED.candles, loaded_at = now()",
            &[
                &sample.coin.as_str(),
                &sample.original_from,
                &sample.original_to,
                &sample.shift_secs,
                &sample.candles,
            ],
        )
        .await
        .map_err(|e| StorageError::query("record the sample history", e))?;
        tx.commit().await.map_err(|e| StorageError::query("commit the sample history", e))?;
        Ok(inserted)
    }

    /// Deletes every sample row and its record, in one transaction (real
    /// history has arrived). Returns how many ticks went.
    pub async fn remove_sample_history(&self) -> Result<u64, StorageError> {
        let mut client = self.client().await?;
        let tx =
            client.transaction().await.map_err(|e| StorageError::query("begin the sample removal", e))?;
        let removed = tx
            .execute("DELETE FROM price_ticks WHERE source = 'sample'", &[])
            .await
            .map_err(|e| StorageError::query("delete the sample ticks", e))?;
        tx.execute("DELETE FROM sample_history", &[])
            .await
            .map_err(|e| StorageError::query("delete the sample record", e))?;
        tx.commit().await.map_err(|e| StorageError::query("commit the sample removal", e))?;
        Ok(removed)
    }

    /// Which kinds of history the database already holds.
    pub async fn history_presence(&self) -> Result<HistoryPresence, StorageError> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM market_history),
                        (SELECT count(*) FROM sample_history)",
                &[],
            )
            .await
            .map_err(|e| StorageError::query("read which history is stored", e))?;
        Ok(HistoryPresence { coingecko: row.get(0), sample_coins: row.get(1) })
    }

    /// The latest known price of each coin, from stream ticks or batch
    /// snapshots, whichever is newer; coins never seen are absent.
    pub async fn latest_prices(&self, coins: &[CoinId]) -> Result<HashMap<CoinId, f64>, StorageError> {
        let ids: Vec<&str> = coins.iter().map(CoinId::as_str).collect();
        let rows = self
            .client()
            .await?
            .query(
                "SELECT DISTINCT ON (coin_id) coin_id, price FROM (
                     SELECT coin_id, price, event_time AS at FROM price_ticks WHERE coin_id = ANY($1)
                     UNION ALL
                     SELECT coin_id, current_price, observed_at FROM market_snapshots
                      WHERE coin_id = ANY($1) AND current_price > 0
                 ) latest ORDER BY coin_id, at DESC",
                &[&ids],
            )
            .await
            .map_err(|e| StorageError::query("read the latest prices", e))?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((CoinId::parse(r.get::<_, &str>(0)).ok()?, r.get::<_, f64>(1))))
            .collect())
    }
}

/// Inserts ticks that never went through Kafka (no partition or offset), in
/// chunks of one statement each; already stored ticks are skipped.
async fn insert_loaded_ticks(
    client: &impl deadpool_postgres::GenericClient,
    ticks: &[domain::Tick],
) -> Result<u64, StorageError> {
    let mut inserted = 0;
    for chunk in ticks.chunks(20_000) {
        let coins: Vec<&str> = chunk.iter().map(|t| t.coin.as_str()).collect();
        let times: Vec<_> = chunk.iter().map(|t| t.event_time).collect();
        let sources: Vec<&str> = chunk.iter().map(|t| t.source.as_str()).collect();
        let prices: Vec<f64> = chunk.iter().map(|t| t.price).collect();
        let volumes: Vec<Option<f64>> = chunk.iter().map(|t| t.volume).collect();
        let intervals: Vec<i32> =
            chunk.iter().map(|t| i32::try_from(t.interval_secs).unwrap_or(i32::MAX)).collect();
        let seqs: Vec<i64> = chunk.iter().map(|t| i64::try_from(t.seq).unwrap_or(i64::MAX)).collect();
        inserted += client
            .execute(
                "INSERT INTO price_ticks (coin_id, event_time, source, price, volume, interval_secs, seq)
                 SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::float8[], $5::float8[],
                                      $6::int4[], $7::int8[])
                 ON CONFLICT (coin_id, event_time, source) DO NOTHING",
                &[&coins, &times, &sources, &prices, &volumes, &intervals, &seqs],
            )
            .await
            .map_err(|e| StorageError::query("load ticks", e))?;
    }
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::SecretString;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// `url` with the TLS fallbacks a [`PgConfig`] loads from `env`.
    fn parse(url: &str, env: &[(&str, &str)]) -> Result<ConnectOptions, String> {
        let config: PgConfig =
            settings::Env::from_pairs(env.iter().copied()).load().map_err(|e| e.to_string())?;
        ConnectOptions::parse(url, config.ssl_mode, config.ssl_root_cert.as_deref())
    }

    fn mode(url: &str, env: &[(&str, &str)]) -> SslMode {
        parse(url, env).unwrap().config.get_ssl_mode()
    }

    #[test]
    fn a_url_without_sslmode_prefers_tls_and_keeps_everything_else() {
        let options = parse("postgres://postgres@127.0.0.1:55432/crypto", &[]).unwrap();
        assert_eq!(options.config.get_ssl_mode(), SslMode::Prefer);
        assert_eq!(options.root_cert, None);
        assert_eq!(describe(&options.config), "127.0.0.1:55432/crypto");

        let options =
            parse("postgres://u:p%40ss@h:6432/db?connect_timeout=5&application_name=my%20app", &[]).unwrap();
        assert_eq!(options.config.get_ssl_mode(), SslMode::Prefer);
        assert_eq!(options.config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(options.config.get_connect_timeout(), Some(&Duration::from_secs(5)));
        assert_eq!(options.config.get_application_name(), Some("my app"));
    }

    #[test]
    fn sslmode_takes_libpq_values_and_every_tls_mode_is_required() {
        assert_eq!(mode("postgres://u@h/d?sslmode=disable", &[]), SslMode::Disable);
        assert_eq!(mode("postgres://u@h/d?sslmode=prefer", &[]), SslMode::Prefer);
        for verified in ["require", "verify-ca", "verify-full"] {
            let url = format!("postgresql://u@h/d?application_name=x&sslmode={verified}&connect_timeout=3");
            let options = parse(&url, &[]).unwrap();
            assert_eq!(options.config.get_ssl_mode(), SslMode::Require, "{verified}");
            assert_eq!(options.config.get_application_name(), Some("x"));
            assert_eq!(options.config.get_connect_timeout(), Some(&Duration::from_secs(3)));
        }
        // A key=value string keeps what tokio-postgres read in it.
        assert_eq!(mode("host=h user=u sslmode=require", &[("PGSSLMODE", "disable")]), SslMode::Require);
    }

    #[test]
    fn sslrootcert_is_taken_out_and_decoded() {
        let options =
            parse("postgres://u@h/d?sslmode=verify-full&sslrootcert=/opt/rds/global-bundle.pem", &[])
                .unwrap();
        assert_eq!(options.root_cert, Some(PathBuf::from("/opt/rds/global-bundle.pem")));
        let options = parse("postgres://u@h/d?sslrootcert=%2Fetc%2Fmy%20ca.pem", &[]).unwrap();
        assert_eq!(options.root_cert, Some(PathBuf::from("/etc/my ca.pem")));
        // libpq's `system`: the system's roots only.
        assert_eq!(parse("postgres://u@h/d?sslrootcert=system", &[]).unwrap().root_cert, None);
    }

    #[test]
    fn the_url_wins_over_the_environment() {
        let env = [("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", "/env/ca.pem")];
        let options = parse("postgres://u@h/d", &env).unwrap();
        assert_eq!(options.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(options.root_cert, Some(PathBuf::from("/env/ca.pem")));
        let options = parse("postgres://u@h/d?sslmode=disable&sslrootcert=/url/ca.pem", &env).unwrap();
        assert_eq!(options.config.get_ssl_mode(), SslMode::Disable);
        assert_eq!(options.root_cert, Some(PathBuf::from("/url/ca.pem")));
        // Set but blank is a mistake, not `prefer`.
        assert!(parse("postgres://u@h/d", &[("PGSSLMODE", " ")]).unwrap_err().contains("PGSSLMODE"));
    }

    #[test]
    fn bad_ssl_settings_are_named_without_the_password() {
        let err = parse("postgres://u:hunter2@h/d?sslmode=allow", &[]).unwrap_err();
        assert!(err.contains("sslmode=\"allow\"") && !err.contains("hunter2"), "{err}");
        let err = parse("postgres://u:hunter2@h/d", &[("PGSSLMODE", "verify_full")]).unwrap_err();
        assert!(
            err.contains("PGSSLMODE") && err.contains("verify_full") && !err.contains("hunter2"),
            "{err}"
        );
        let options = parse("postgres://u@h/d?sslmode=require&sslrootcert=/nonexistent/ca.pem", &[]).unwrap();
        let err = options.tls().err().unwrap().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }

    fn local_url(query: &str) -> SecretString {
        let config: PgConfig = settings::Env::from_process().load().unwrap();
        let url = config.database_url.expose_secret();
        let sep = if url.contains('?') { '&' } else { '?' };
        SecretString::from(format!("{url}{sep}{query}"))
    }

    /// The local stack's Postgres runs without TLS: `prefer` must fall back to
    /// plaintext there, as before TLS support.
    #[tokio::test]
    async fn prefer_connects_in_plaintext_to_a_server_without_tls() {
        let store =
            PgStore::connect(&PgConfig::from_url(local_url("application_name=tls-test"))).await.unwrap();
        let row = store
            .client()
            .await
            .unwrap()
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .unwrap();
        assert!(!row.get::<_, bool>(0));
    }

    #[tokio::test]
    async fn required_tls_never_falls_back_to_plaintext() {
        for mode in ["require", "verify-full"] {
            let err = connect_error(local_url(&format!("sslmode={mode}")).expose_secret().to_owned()).await;
            assert!(err.contains("server does not support TLS"), "{mode}: {err}");
        }
    }

    // A test CA and a certificate it signed for `localhost` (EC P-256, valid
    // 2020-2120), for the fake TLS server below. Test material only.
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBdjCCAR2gAwIBAgIBATAKBggqhkjOPQQDAjAiMSAwHgYDVQQDDBdjcnlwdG8t
cGlwZWxpbmUgdGVzdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAw
MFowIjEgMB4GA1UEAwwXY3J5cHRvLXBpcGVsaW5lIHRlc3QgQ0EwWTATBgcqhkjO
PQIBBggqhkjOPQMBBwNCAARPzDUALqiVCUBeBLGUCEfGn+pPvp2OwvZ5FWWwRh1y
hPJOGLSi7zsrSIwqlO4plLW3iTFjTEDryJd92qwFc92ao0IwQDAPBgNVHRMBAf8E
BTADAQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUcZpcthugsJd26J3BIyNM
m0k0o8EwCgYIKoZIzj0EAwIDRwAwRAIgOIiJIJDUiA008foqzFKW17sKvs5yEM39
sInpl9pjtbICIHEDIRong5PdjGL5qw14BzD3+uj2xyD+AsfBi+zgF/9a
-----END CERTIFICATE-----
";
    const TEST_SERVER_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBtTCCAVqgAwIBAgIBAjAKBggqhkjOPQQDAjAiMSAwHgYDVQQDDBdjcnlwdG8t
cGlwZWxpbmUgdGVzdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAw
MFowFDESMBAGA1UEAwwJbG9jYWxob3N0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD
QgAEn8TZEdxEg+z+VyQpphluBHFS02FNgbBjZc4Nfta3QpGHP9/rXXPJG07wZST9
Tq6iruN/lin6fwUxyaFwJ9mzU6OBjDCBiTAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB
/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAUBgNVHREEDTALgglsb2NhbGhv
c3QwHwYDVR0jBBgwFoAUcZpcthugsJd26J3BIyNMm0k0o8EwHQYDVR0OBBYEFPVN
sXLoKjaCmVmpVS691XyXM0BiMAoGCCqGSM49BAMCA0kAMEYCIQDux+r4lv9TqUoI
Vwk3NGPYwSL+xiKEa19fYUakap5vpQIhAIu0I92+7/t3+/ogYIm+J6utp/GMzVnf
bkE5802usl7N
-----END CERTIFICATE-----
";
    const TEST_SERVER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZGZkWK2gjHYKtNFm
h2gPrwCnmdq6KaoGTy7Kq+8goDqhRANCAASfxNkR3ESD7P5XJCmmGW4EcVLTYU2B
sGNlzg1+1rdCkYc/3+tdc8kbTvBlJP1OrqKu43+WKfp/BTHJoXAn2bNT
-----END PRIVATE KEY-----
";

    /// A server that speaks just enough of the protocol to test the client's
    /// TLS: it accepts the SSLRequest, completes the TLS handshake, and answers
    /// the startup message with a FATAL error whose text proves the handshake
    /// succeeded.
    async fn fake_tls_server() -> u16 {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(TEST_SERVER_CERT.as_bytes()).unwrap()],
                rustls::pki_types::PrivateKeyDer::from_pem_slice(TEST_SERVER_KEY.as_bytes()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 8];
                    socket.read_exact(&mut request).await.ok()?;
                    // Length 8, then the SSLRequest code 80877103.
                    assert_eq!(request, [0, 0, 0, 8, 4, 210, 22, 47]);
                    socket.write_all(b"S").await.ok()?;
                    let mut tls = acceptor.accept(socket).await.ok()?;
                    let len = tls.read_u32().await.ok()?;
                    let mut startup = vec![0u8; len.checked_sub(4)? as usize];
                    tls.read_exact(&mut startup).await.ok()?;
                    let fields = b"SFATAL\0C28000\0Mtls ok: fake server\0\0";
                    let mut reply = vec![b'E'];
                    reply.extend_from_slice(&(4 + fields.len() as u32).to_be_bytes());
                    reply.extend_from_slice(fields);
                    tls.write_all(&reply).await.ok()?;
                    tls.shutdown().await.ok()
                });
            }
        });
        port
    }

    /// The test CA in a file of its own, removed when dropped.
    struct CaFile(PathBuf);

    impl CaFile {
        fn new(test: &str) -> Self {
            let path = std::env::temp_dir().join(format!("storage-{test}-{}.pem", std::process::id()));
            std::fs::write(&path, TEST_CA).unwrap();
            Self(path)
        }
    }

    impl Drop for CaFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    async fn connect_error(url: String) -> String {
        let config = PgConfig::from_url(SecretString::from(url));
        telemetry::failure::Chain(&PgStore::connect(&config).await.unwrap_err()).to_string()
    }

    #[tokio::test]
    async fn tls_verifies_the_server_with_the_extra_ca() {
        let port = fake_tls_server().await;
        let ca = CaFile::new("extra-ca");
        for mode in ["prefer", "require", "verify-ca", "verify-full"] {
            let err = connect_error(format!(
                "postgres://u:pw@localhost:{port}/d?sslmode={mode}&sslrootcert={}",
                ca.0.display()
            ))
            .await;
            assert!(err.contains("tls ok: fake server"), "{mode}: {err}");
        }
        // The same through PGSSLROOTCERT is covered by `the_url_wins_over_the_environment`.
    }

    #[tokio::test]
    async fn an_untrusted_certificate_is_refused_in_every_mode() {
        let port = fake_tls_server().await;
        for mode in ["prefer", "require", "verify-ca", "verify-full"] {
            let err = connect_error(format!("postgres://u:pw@localhost:{port}/d?sslmode={mode}")).await;
            assert!(err.contains("not trusted") && !err.contains("tls ok"), "{mode}: {err}");
        }
    }

    #[tokio::test]
    async fn the_host_name_is_checked_in_every_mode() {
        let port = fake_tls_server().await;
        let ca = CaFile::new("host-name");
        // The certificate names `localhost`, not 127.0.0.1.
        for mode in ["require", "verify-ca", "verify-full"] {
            let err = connect_error(format!(
                "postgres://u:pw@127.0.0.1:{port}/d?sslmode={mode}&sslrootcert={}",
                ca.0.display()
            ))
            .await;
            assert!(err.contains("not for this host name") && !err.contains("tls ok"), "{mode}: {err}");
        }
    }
}
