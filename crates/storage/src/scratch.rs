//! Databases of their own beside the pipeline's: one per test, one per
//! benchmark run, created migrated and dropped afterwards.

use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::NoTls;

use crate::error::pg_message;
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
        Err(StorageError::Query {
            what: "name a scratch database",
            message: format!("{name:?} is not [a-z0-9_]{{1,63}}"),
        })
    }
}

async fn admin(admin_url: &SecretString) -> Result<tokio_postgres::Client, StorageError> {
    let (client, connection) =
        tokio_postgres::connect(admin_url.expose_secret(), NoTls).await.map_err(|e| {
            StorageError::Connect { target: String::from("DATABASE_URL"), message: pg_message(&e) }
        })?;
    tokio::spawn(connection);
    Ok(client)
}

/// Creates database `name` on the server `admin_url` points at, applies the
/// migrations, and returns its URL and a pool.
pub async fn create_database(
    admin_url: &SecretString,
    name: &str,
) -> Result<(SecretString, PgStore), StorageError> {
    let name = checked(name)?;
    admin(admin_url)
        .await?
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .map_err(|e| StorageError::query("create a scratch database", &e))?;
    let url = match admin_url.expose_secret().rsplit_once('/') {
        Some((server, rest)) => {
            let query = rest.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
            SecretString::from(format!("{server}/{name}{query}"))
        }
        None => {
            return Err(StorageError::Connect {
                target: String::from("DATABASE_URL"),
                message: String::from("no database in the URL"),
            });
        }
    };
    let store = PgStore::connect(&url).await?;
    crate::migrate(&store).await?;
    Ok((url, store))
}

/// Drops database `name`, closing its connections.
pub async fn drop_database(admin_url: &SecretString, name: &str) -> Result<(), StorageError> {
    let name = checked(name)?;
    admin(admin_url)
        .await?
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .map_err(|e| StorageError::query("drop a scratch database", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_names_are_accepted() {
        assert!(checked("test_0a9f").is_ok());
        for bad in ["", "Test", "a\"b", "x; DROP TABLE y", &"a".repeat(64)] {
            assert!(checked(bad).is_err(), "{bad}");
        }
    }
}
