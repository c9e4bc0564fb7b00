//! `ioc backup --data DIR --out FILE` and `ioc restore FILE --data DIR` (see
//! [`ioc_engine::backup`]): while the engine runs, into a new folder.

use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct BackupArgs {
    #[command(flatten)]
    common: crate::Common,
    /// The backup file to write (written as FILE.partial, renamed when complete).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// A file made by `ioc backup`.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The folder to restore into: new, or empty.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

pub fn run_backup(a: BackupArgs) -> anyhow::Result<()> {
    let config = a.common.load()?;
    if let Some(url) = &config.store.url {
        anyhow::bail!(
            "the store is PostgreSQL ({url}): back its database up with pg_dump (or the \
             server's own backups); `ioc backup` copies a data folder's SQLite store"
        );
    }
    let data = config.data_dir();
    let s = ioc_engine::backup::backup(&data, &a.out)?;
    println!(
        "backed up {} ({} files, {:.1} MB, schema version {}) into {}",
        data.display(),
        s.files,
        mb(s.bytes),
        s.schema_version,
        a.out.display()
    );
    Ok(())
}

pub fn run_restore(a: RestoreArgs) -> anyhow::Result<()> {
    let s = ioc_engine::backup::restore(&a.file, &a.data)?;
    println!(
        "restored {} ({} files, {:.1} MB, schema version {}) into {}",
        a.file.display(),
        s.files,
        mb(s.bytes),
        s.schema_version,
        a.data.display()
    );
    Ok(())
}
