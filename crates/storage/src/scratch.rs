//! Databases of their own beside the pipeline's: one per test, one per
//! benchmark run, created migrated and dropped afterwards.

use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::NoTls;

use crate::pg::{ConnectOptions, connect_hint};
use crate::{PgStore, StorageError};

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
async fn admin(admin_url: &SecretString) -> Result<tokio_postgres::Client, StorageError> {
    let options = ConnectOptions::from_env(admin_url)?;
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

/// Creates database `name` on the server `admin_url` points at, applies the
/// migrations, and returns its URL and a pool.
pub async fn create_database(
    admin_url: &SecretString,
    name: &str,
) -> Result<(SecretString, PgStore), StorageError> {
    let name = checked(name)?;
    let url = SecretString::from(with_database(admin_url.expose_secret(), name).ok_or_else(|| {
        StorageError::Config(String::from("expected a postgres://USER@HOST:PORT/DATABASE URL"))
    })?);
    admin(admin_url)
        .await?
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .map_err(|e| StorageError::query("create a scratch database", e))?;
    let store = PgStore::connect(&url).await?;
    crate::migrate(&store).await?;
    Ok((url, store))
}

/// `url` with its database replaced by `name`, its query (`sslmode`,
/// `sslrootcert=/a/path`…) kept.
fn with_database(url: &str, name: &str) -> Option<String> {
    let (url, query) = url.split_once('?').map_or((url, None), |(u, q)| (u, Some(q)));
    let (scheme, rest) = url.split_once("://")?;
    let server = rest.split_once('/').map_or(rest, |(server, _)| server);
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    Some(format!("{scheme}://{server}/{name}{query}"))
}

/// Connects to the database `url` names, creating it (empty) first when the
/// server does not have it: a deployment's first run on a shared server.
/// Returns the pool and whether the database was created.
pub async fn ensure_database(url: &SecretString) -> Result<(PgStore, bool), StorageError> {
    let options = ConnectOptions::from_env(url)?;
    let name = options.config.get_dbname().unwrap_or("postgres").to_owned();
    let admin_url =
        with_database(url.expose_secret(), "postgres").map(SecretString::from).ok_or_else(|| {
            StorageError::Config(String::from("expected a postgres://USER@HOST:PORT/DATABASE URL"))
        })?;
    let admin = admin(&admin_url).await?;
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
    Ok((PgStore::connect(url).await?, !exists))
}

/// Drops database `name`, closing its connections.
pub async fn drop_database(admin_url: &SecretString, name: &str) -> Result<(), StorageError> {
    let name = checked(name)?;
    admin(admin_url)
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
        ];
        for (admin, scratch) in cases {
            assert_eq!(with_database(admin, "t1").as_deref(), Some(scratch), "{admin}");
        }
        assert_eq!(with_database("host=h user=u", "t1"), None);
    }

    #[test]
    fn only_safe_names_are_accepted() {
        assert!(checked("test_0a9f").is_ok());
        for bad in ["", "Test", "a\"b", "x; DROP TABLE y", &"a".repeat(64)] {
            assert!(checked(bad).is_err(), "{bad}");
        }
    }
}
