//! `ioc backup` and `ioc restore`: a whole data folder in one file, taken while the engine
//! runs, put back into a new folder.
//!
//! The database is copied with SQLite's `VACUUM INTO` from a read-only connection: one
//! consistent snapshot, the commits still in the WAL included, without stopping the writer
//! (a plain file copy of `ioc.db` would miss the WAL or catch a page half written). Every
//! other file of the folder (rules, basemap, reports, evidence clips, …) goes in as it is,
//! except what belongs to a running engine (its lock and `server.json`).
//!
//! The file is a gzipped tar whose last entry is a manifest: the versions, and each file's
//! size and SHA-256. A restore unpacks into a staging folder beside the target, checks
//! every file against the manifest, opens the database (an older schema is brought up to
//! date; a newer one is refused, see [`crate::store::open`]) and only then renames the
//! staging folder into place: a restore that fails leaves nothing half restored, and it
//! never writes over a folder that holds anything.

use crate::audit::hex;
use crate::engine::{LOCK_FILE, SERVER_FILE};
use crate::store::{self, DB_FILE};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The manifest's name in the archive (its last entry).
pub const MANIFEST: &str = "ioc-backup.json";
/// The archive layout; a restore refuses a layout it does not know.
const FORMAT: u32 = 1;

/// What the engine's own files are beside the database: never backed up, never restored.
const RUNTIME: [&str; 5] = [DB_FILE, "ioc.db-wal", "ioc.db-shm", LOCK_FILE, SERVER_FILE];

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} holds no IOC database ({DB_FILE}): nothing to back up")]
    NoDatabase(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot of {path}: {source}")]
    Snapshot {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "{0} changed while it was being backed up (a file written at that moment); run the \
         backup again"
    )]
    Changed(PathBuf),
    #[error(
        "{0} is not empty: restore into a new folder (or move this one aside first); \
         nothing was written"
    )]
    NotEmpty(PathBuf),
    #[error("{file} is not a backup this version can restore: {why}")]
    Invalid { file: PathBuf, why: String },
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Manifest {
    pub format: u32,
    /// The version of the program that made it.
    pub app_version: String,
    /// The database's schema version in the backup.
    pub schema_version: usize,
    pub made_at: DateTime<Utc>,
    pub files: Vec<FileEntry>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FileEntry {
    /// Relative to the data folder, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// What a backup or a restore did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub files: usize,
    pub bytes: u64,
    pub schema_version: usize,
}

/// The folder's files to back up besides the database, relative paths sorted. Symbolic
/// links are left out (they point outside what the folder owns).
fn other_files(data_dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BackupError> {
        for e in std::fs::read_dir(dir).map_err(io(dir))? {
            let e = e.map_err(io(dir))?;
            let t = e.file_type().map_err(io(&e.path()))?;
            let path = e.path();
            let rel = path.strip_prefix(root).expect("under root").to_owned();
            if t.is_dir() {
                walk(root, &path, out)?;
            } else if t.is_file() && !(dir == root && RUNTIME.iter().any(|r| rel == Path::new(r))) {
                out.push(rel);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(data_dir, data_dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// `rel` as the archive names it (always `/`).
fn archive_name(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Appends the file at `path` as `name`, hashing what goes in; refuses a file that is not
/// the size it was when the header was written.
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    name: &str,
) -> Result<FileEntry, BackupError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    let size = f.metadata().map_err(io(path))?.len();
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_entry_type(tar::EntryType::Regular);
    let mut hashing = Hashing {
        inner: f.take(size),
        hash: Sha256::new(),
        read: 0,
    };
    tar.append_data(&mut header, name, &mut hashing)
        .map_err(io(path))?;
    if hashing.read != size {
        return Err(BackupError::Changed(path.to_owned()));
    }
    Ok(FileEntry {
        path: name.to_string(),
        size,
        sha256: hex(&hashing.hash.finalize()),
    })
}

struct Hashing<R> {
    inner: R,
    hash: Sha256,
    read: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Backs up the data folder into `out` (written beside as `out.partial`, renamed when
/// complete). The engine may be running on the folder.
pub fn backup(data_dir: &Path, out: &Path) -> Result<Summary, BackupError> {
    let db = data_dir.join(DB_FILE);
    if !db.is_file() {
        return Err(BackupError::NoDatabase(data_dir.to_owned()));
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let staging = tempfile::Builder::new()
        .prefix(".ioc-backup-")
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    let snapshot = staging.path().join(DB_FILE);
    let snap_err = |source| BackupError::Snapshot {
        path: db.clone(),
        source,
    };
    {
        let c = rusqlite::Connection::open_with_flags(
            &db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(snap_err)?;
        c.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(snap_err)?;
        c.execute("VACUUM INTO ?1", [snapshot.to_string_lossy()])
            .map_err(snap_err)?;
    }
    let schema_version = {
        let c = rusqlite::Connection::open(&snapshot).map_err(snap_err)?;
        store::schema_version(&c).map_err(snap_err)?
    };

    let partial = {
        let mut name = out.as_os_str().to_owned();
        name.push(".partial");
        PathBuf::from(name)
    };
    let file = std::fs::File::create(&partial).map_err(io(&partial))?;
    store::owner_only(&partial, false);
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        std::io::BufWriter::new(file),
        flate2::Compression::fast(),
    ));
    let written = (|| {
        let mut files = vec![append(&mut tar, &snapshot, DB_FILE)?];
        for rel in other_files(data_dir)? {
            files.push(append(&mut tar, &data_dir.join(&rel), &archive_name(&rel))?);
        }
        let manifest = Manifest {
            format: FORMAT,
            app_version: env!("CARGO_PKG_VERSION").into(),
            schema_version,
            made_at: Utc::now(),
            files,
        };
        let body = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o600);
        tar.append_data(&mut header, MANIFEST, body.as_slice())
            .map_err(io(&partial))?;
        let gz = tar.into_inner().map_err(io(&partial))?;
        let buf = gz.finish().map_err(io(&partial))?;
        let file = buf.into_inner().map_err(|e| BackupError::Io {
            path: partial.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io(&partial))?;
        Ok(manifest)
    })();
    let manifest = match written {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, out).map_err(io(out))?;
    Ok(Summary {
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.size).sum(),
        schema_version,
    })
}

/// Restores the backup `file` into `data_dir`, which must not exist or be empty.
pub fn restore(file: &Path, data_dir: &Path) -> Result<Summary, BackupError> {
    if std::fs::read_dir(data_dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(BackupError::NotEmpty(data_dir.to_owned()));
    }
    let invalid = |why: String| BackupError::Invalid {
        file: file.to_owned(),
        why,
    };
    let parent = match data_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".ioc-restore-")
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    let f = std::fs::File::open(file).map_err(io(file))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)));
    let mut manifest: Option<Manifest> = None;
    let mut found: Vec<FileEntry> = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| invalid(format!("not a gzipped tar ({e})")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| invalid(format!("damaged ({e})")))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(invalid("it holds something other than plain files".into()));
        }
        let name = entry
            .path()
            .map_err(|e| invalid(format!("a name that is not a path ({e})")))?
            .into_owned();
        let name_str = archive_name(&name);
        if name_str == MANIFEST {
            let mut body = Vec::new();
            entry
                .read_to_end(&mut body)
                .map_err(|e| invalid(format!("damaged ({e})")))?;
            manifest = Some(
                serde_json::from_slice(&body)
                    .map_err(|e| invalid(format!("its manifest does not read ({e})")))?,
            );
            continue;
        }
        if manifest.is_some() {
            return Err(invalid("files after the manifest".into()));
        }
        // Inside the staging folder only (`..` and absolute names are refused).
        if name.is_absolute()
            || name
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(invalid(format!("a file outside the folder ({name_str})")));
        }
        let dest = staging.path().join(&name);
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d).map_err(io(d))?;
        }
        let mut out = std::fs::File::create(&dest).map_err(io(&dest))?;
        let mut hashing = Hashing {
            inner: &mut entry,
            hash: Sha256::new(),
            read: 0,
        };
        std::io::copy(&mut hashing, &mut out).map_err(|e| invalid(format!("damaged ({e})")))?;
        out.sync_all().map_err(io(&dest))?;
        found.push(FileEntry {
            path: name_str,
            size: hashing.read,
            sha256: hex(&hashing.hash.finalize()),
        });
    }
    let manifest = manifest.ok_or_else(|| invalid("no manifest (cut short?)".into()))?;
    if manifest.format != FORMAT {
        return Err(invalid(format!(
            "archive format {} (this version reads {FORMAT})",
            manifest.format
        )));
    }
    if found != manifest.files {
        let bad: Vec<&str> = manifest
            .files
            .iter()
            .filter(|m| !found.contains(m))
            .map(|m| m.path.as_str())
            .chain(
                found
                    .iter()
                    .filter(|f| !manifest.files.contains(f))
                    .map(|f| f.path.as_str()),
            )
            .collect();
        return Err(invalid(format!(
            "files differ from its manifest: {}",
            bad.join(", ")
        )));
    }
    if !found.iter().any(|f| f.path == DB_FILE) {
        return Err(invalid("no database in it".into()));
    }
    // Brings an older schema up to date, refuses a newer one.
    store::open(staging.path())?;
    let staged = staging.keep();
    if data_dir.exists() {
        std::fs::remove_dir(data_dir).map_err(io(data_dir))?;
    }
    std::fs::rename(&staged, data_dir).map_err(io(data_dir))?;
    store::owner_only(data_dir, true);
    Ok(Summary {
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.size).sum(),
        schema_version: manifest.schema_version,
    })
}
