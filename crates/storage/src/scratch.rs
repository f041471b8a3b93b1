//! Databases of their own beside the pipeline's: one per test, one per
//! benchmark run, created migrated and dropped afterwards.

use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::NoTls;
use url::Url;

use crate::pg::{ConnectOptions, connect_hint};
use crate::{PgConfig, PgStore, StorageError};

/// Identifiers cannot be bound as parameters, so names are restricted to a
/// safe alphabet instead.
fn checked(name: &str) -> Result<&str, StorageError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(name)
    } else {
        Err(StorageError::Config(format!("the database name {name:?} is not [a-z0-9_]{{1,63}}")))
    }
}

/// A connection to the server, secured as [`PgStore::connect`] secures its own.
async fn admin(options: &ConnectOptions) -> Result<tokio_postgres::Client, StorageError> {
    let failed = |e: tokio_postgres::Error| StorageError::Connect {
        target: String::from("DATABASE_URL"),
        hint: connect_hint(&e),
        source: e.into(),
    };
    let client = match options.tls()? {
        None => {
            let (client, connection) = options.config.connect(NoTls).await.map_err(failed)?;
            tokio::spawn(connection);
            client
        }
        Some(tls) => {
            let (client, connection) = options.config.connect(tls).await.map_err(failed)?;
            tokio::spawn(connection);
            client
        }
    };
    Ok(client)
}

/// Creates database `name` on the server `admin` points at, applies the
/// migrations, and returns its configuration (the same TLS as `admin`'s) and a pool.
pub async fn create_database(admin: &PgConfig, name: &str) -> Result<(PgConfig, PgStore), StorageError> {
    let name = checked(name)?;
    let url = with_database(admin.database_url.expose_secret(), name).ok_or_else(|| {
        StorageError::Config(String::from("expected a postgres://USER@HOST:PORT/DATABASE URL"))
    })?;
    let config = admin.with_url(SecretString::from(url));
    self::admin(&ConnectOptions::new(admin)?)
        .await?
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .map_err(|e| StorageError::query("create a scratch database", e))?;
    let store = PgStore::connect(&config).await?;
    crate::migrate(&store).await?;
    Ok((config, store))
}

/// `url` with its database replaced by `name`, its user, password and query
/// (`sslmode`, `sslrootcert=/a/path`…) kept as written; `None` when `url` is
/// not a `postgres://` URL. A URL, not a [`tokio_postgres::Config`]: the
/// caller hands it on (a benchmark's Python consumer reads `DATABASE_URL`).
fn with_database(url: &str, name: &str) -> Option<String> {
    let mut url = Url::parse(url).ok().filter(|u| matches!(u.scheme(), "postgres" | "postgresql"))?;
    url.set_path(name);
    Some(url.into())
}

/// Connects to the database `url` names, creating it (empty) first when the
/// server does not have it: a deployment's first run on a shared server.
/// Returns the pool and whether the database was created.
pub async fn ensure_database(config: &PgConfig) -> Result<(PgStore, bool), StorageError> {
    let mut options = ConnectOptions::new(config)?;
    let name = options.config.get_dbname().unwrap_or("postgres").to_owned();
    // The same server, user and TLS, on the database every server has.
    options.config.dbname("postgres");
    let admin = admin(&options).await?;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(|e| StorageError::query("look the database up", e))?
        .is_some();
    if !exists {
        admin
            .batch_execute(&format!("CREATE DATABASE \"{}\"", checked(&name)?))
            .await
            .map_err(|e| StorageError::query("create the database", e))?;
    }
    Ok((PgStore::connect(config).await?, !exists))
}

/// Drops database `name`, closing its connections.
pub async fn drop_database(admin: &PgConfig, name: &str) -> Result<(), StorageError> {
    let name = checked(name)?;
    self::admin(&ConnectOptions::new(admin)?)
        .await?
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .map_err(|e| StorageError::query("drop a scratch database", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scratch_url_keeps_server_and_query() {
        let cases = [
            ("postgres://postgres@127.0.0.1:55432/crypto", "postgres://postgres@127.0.0.1:55432/t1"),
            (
                "postgres://u:p@h:5432/db?sslmode=verify-full&sslrootcert=/etc/rds/ca.pem",
                "postgres://u:p@h:5432/t1?sslmode=verify-full&sslrootcert=/etc/rds/ca.pem",
            ),
            ("postgresql://u@h", "postgresql://u@h/t1"),
            ("postgres://u@h/?sslmode=disable", "postgres://u@h/t1?sslmode=disable"),
            // Percent-encoded parts stay as they were written.
            (
                "postgres://u:p%40ss%2Fw@h/db?application_name=my%20app",
                "postgres://u:p%40ss%2Fw@h/t1?application_name=my%20app",
            ),
            ("postgres://u@[::1]:5432/db", "postgres://u@[::1]:5432/t1"),
            // A Unix socket's folder as the host.
            ("postgres://u@%2Frun%2Fpostgresql/db", "postgres://u@%2Frun%2Fpostgresql/t1"),
        ];
        for (admin, scratch) in cases {
            assert_eq!(with_database(admin, "t1").as_deref(), Some(scratch), "{admin}");
        }
        assert_eq!(with_database("host=h user=u", "t1"), None);
        assert_eq!(with_database("mysql://u@h/db", "t1"), None);
    }

    #[test]
    fn only_safe_names_are_accepted() {
        assert!(checked("test_0a9f").is_ok());
        for bad in ["", "Test", "a\"b", "x; DROP TABLE y", &"a".repeat(64)] {
            assert!(checked(bad).is_err(), "{bad}");
        }
    }
}
