//! Publishing: the rendered site goes to a local folder or an S3 website
//! bucket, uploading only files whose bytes changed and then removing files the
//! new site no longer has (old fingerprinted assets, a coin no longer followed).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use futures::TryStreamExt;
use md5::{Digest, Md5};
use serde::Serialize;
use tracing::{debug, info};
use walkdir::WalkDir;

use crate::SiteError;
use crate::render::{Site, SiteFile};

/// Where the site goes, from `SITE_OUTPUT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Dir(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Output {
    /// `s3://BUCKET[/PREFIX]` or a folder.
    pub fn parse(raw: &str) -> Result<Self, SiteError> {
        let raw = raw.trim();
        if let Some(rest) = raw.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let prefix = prefix.trim_matches('/');
            if bucket.is_empty() {
                return Err(SiteError::Output(raw.to_owned()));
            }
            let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
            Ok(Self::S3 { bucket: bucket.to_owned(), prefix })
        } else if raw.is_empty() || raw.contains("://") {
            Err(SiteError::Output(raw.to_owned()))
        } else {
            Ok(Self::Dir(PathBuf::from(raw)))
        }
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dir(dir) => write!(f, "{}", dir.display()),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// What one publication did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Published {
    pub uploaded: usize,
    pub unchanged: usize,
    pub deleted: usize,
    pub bytes_uploaded: usize,
}

/// Where site files are kept: the narrow interface publishing needs.
pub trait SiteStore {
    /// Every file under the site's root with the hex MD5 of its bytes
    /// (`None` when the store cannot tell, e.g. a multipart S3 upload).
    fn list(&self) -> impl Future<Output = Result<HashMap<String, Option<String>>, SiteError>> + Send;
    fn put(&self, file: &SiteFile) -> impl Future<Output = Result<(), SiteError>> + Send;
    fn delete(&self, paths: &[String]) -> impl Future<Output = Result<(), SiteError>> + Send;
}

/// Uploads what changed, pages after their assets, then deletes what is gone.
pub async fn publish(site: &Site, store: &impl SiteStore) -> Result<Published, SiteError> {
    let existing = store.list().await?;
    let (changed, unchanged): (Vec<&SiteFile>, Vec<&SiteFile>) = site
        .files
        .iter()
        .partition(|f| existing.get(&f.path).is_none_or(|md5| md5.as_deref() != Some(f.md5().as_str())));
    // Assets are new names when they change: upload them (concurrently) before the pages that use them.
    let (assets, pages): (Vec<&SiteFile>, Vec<&SiteFile>) =
        changed.iter().partition(|f| f.path.starts_with("assets/"));
    futures::stream::iter(assets.iter().map(Ok)).try_for_each_concurrent(8, |f| store.put(f)).await?;
    // Pages in the site's order: the overview last.
    for page in &pages {
        store.put(page).await?;
    }
    let keep: HashSet<&str> = site.files.iter().map(|f| f.path.as_str()).collect();
    let mut gone: Vec<String> = existing.keys().filter(|p| !keep.contains(p.as_str())).cloned().collect();
    gone.sort();
    if !gone.is_empty() {
        debug!(files = ?gone, "removing files the site no longer has");
        store.delete(&gone).await?;
    }
    let published = Published {
        uploaded: changed.len(),
        unchanged: unchanged.len(),
        deleted: gone.len(),
        bytes_uploaded: changed.iter().map(|f| f.body.len()).sum(),
    };
    info!(
        uploaded = published.uploaded,
        unchanged = published.unchanged,
        deleted = published.deleted,
        "site published"
    );
    Ok(published)
}

/// A local folder, e.g. `.state/site` served by `just serve`.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path_of(&self, relative: &str) -> PathBuf {
        relative.split('/').fold(self.root.clone(), |p, part| p.join(part))
    }
}

impl SiteStore for DirStore {
    async fn list(&self) -> Result<HashMap<String, Option<String>>, SiteError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || walk(&root))
            .await
            .map_err(|e| SiteError::io(&self.root, std::io::Error::other(e)))?
    }

    async fn put(&self, file: &SiteFile) -> Result<(), SiteError> {
        let path = self.path_of(&file.path);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&dir).await.map_err(|e| SiteError::io(&dir, e))?;
        // Write beside, then rename: the file server never serves half a page.
        let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
        tokio::fs::write(&tmp, &file.body).await.map_err(|e| SiteError::io(&tmp, e))?;
        tokio::fs::rename(&tmp, &path).await.map_err(|e| SiteError::io(&path, e))
    }

    async fn delete(&self, paths: &[String]) -> Result<(), SiteError> {
        for relative in paths {
            let path = self.path_of(relative);
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(SiteError::io(&path, e)),
            }
        }
        Ok(())
    }
}

/// Every file under `root` with the hex MD5 of its bytes; nothing when `root`
/// does not exist yet.
fn walk(root: &Path) -> Result<HashMap<String, Option<String>>, SiteError> {
    let mut found = HashMap::new();
    // Links are followed, as by a file server (walkdir reports a loop); names
    // starting with a dot are a temporary file of an interrupted write, or the user's dotfiles.
    let entries = WalkDir::new(root)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            // No site yet, or a folder removed while it was listed: nothing there to keep.
            Err(e) if e.io_error().is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) => continue,
            Err(e) => {
                let path = e.path().unwrap_or(root).to_path_buf();
                return Err(SiteError::io(&path, e.into()));
            }
        };
        if entry.file_type().is_dir() {
            continue;
        }
        if entry.depth() == 0 {
            return Err(SiteError::io(root, std::io::ErrorKind::NotADirectory.into()));
        }
        let path = entry.path();
        let bytes = std::fs::read(path).map_err(|e| SiteError::io(path, e))?;
        let Ok(relative) = path.strip_prefix(root) else { continue };
        let key =
            relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        found.insert(key, Some(hex::encode(Md5::digest(&bytes))));
    }
    Ok(found)
}

/// A bucket (or a prefix of one) set up for static website hosting.
#[derive(Debug, Clone)]
pub struct S3SiteStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3SiteStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into(), prefix: prefix.into() }
    }

    fn error(
        &self,
        op: &'static str,
        key: &str,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> SiteError {
        SiteError::Storage(storage::StorageError::S3 {
            op,
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            source: Box::new(err),
        })
    }
}

impl SiteStore for S3SiteStore {
    async fn list(&self) -> Result<HashMap<String, Option<String>>, SiteError> {
        let mut found = HashMap::new();
        let mut pages =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(&self.prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("list", &self.prefix, e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let relative = key.strip_prefix(&self.prefix).unwrap_or(key).to_owned();
                // A single-part upload's ETag is the MD5 of its bytes; a multipart one's has a dash.
                let md5 = object.e_tag().map(|t| t.trim_matches('"').to_owned()).filter(|t| !t.contains('-'));
                found.insert(relative, md5);
            }
        }
        Ok(found)
    }

    async fn put(&self, file: &SiteFile) -> Result<(), SiteError> {
        let key = format!("{}{}", self.prefix, file.path);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(file.content_type)
            .cache_control(file.cache_control)
            .body(ByteStream::from(file.body.clone()))
            .send()
            .await
            .map_err(|e| self.error("put", &key, e))?;
        Ok(())
    }

    async fn delete(&self, paths: &[String]) -> Result<(), SiteError> {
        // DeleteObjects takes at most 1,000 keys per call.
        for chunk in paths.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|p| ObjectIdentifier::builder().key(format!("{}{p}", self.prefix)).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.error("delete", &chunk[0], e))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| self.error("delete", &chunk[0], e))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.error("delete", &chunk[0], e))?;
            if let Some(err) = out.errors().first() {
                return Err(SiteError::Storage(storage::StorageError::S3 {
                    op: "delete",
                    bucket: self.bucket.clone(),
                    key: err.key().unwrap_or("(no key given)").to_owned(),
                    source: format!(
                        "{} {}",
                        err.code().unwrap_or("(no code given)"),
                        err.message().unwrap_or("(no message given)")
                    )
                    .into(),
                }));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary folder, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("site-walk-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn write(&self, relative: &str, body: &str) {
            let path = self.0.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_folder_lists_its_files_by_slash_path_without_dotfiles() {
        let dir = Scratch::new();
        dir.write("index.html", "a");
        dir.write("coins/bitcoin.html", "b");
        dir.write("data/coins/bitcoin.hourly.json", "c");
        dir.write("coins/.0f3a.tmp", "half a page");
        dir.write(".git/config", "the user's");
        std::fs::create_dir_all(dir.0.join("empty")).unwrap();
        let found = walk(&dir.0).unwrap();
        let mut keys: Vec<&str> = found.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["coins/bitcoin.html", "data/coins/bitcoin.hourly.json", "index.html"]);
        assert_eq!(found["index.html"].as_deref(), Some("0cc175b9c0f1b6a831c399e269772661"));
    }

    #[test]
    fn a_missing_folder_is_an_empty_site_and_a_file_is_an_error() {
        let dir = Scratch::new();
        assert_eq!(walk(&dir.0.join("not-yet")).unwrap(), HashMap::new());
        // A root whose own name starts with a dot is still listed.
        dir.write(".state/site/index.html", "a");
        assert_eq!(walk(&dir.0.join(".state/site")).unwrap().len(), 1);
        dir.write("file", "a");
        let err = walk(&dir.0.join("file")).unwrap_err();
        assert!(matches!(&err, SiteError::Io { path, .. } if path.ends_with("file")), "{err:?}");
    }
}
