//! `ioc user …` and `ioc audit …`: they work on the data folder's database directly, also
//! while an engine is running on it (SQLite serialises the writers; the audit chain is
//! extended inside the same transaction, whoever writes).

use crate::Common;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use ioc_engine::auth::{add_user, NewUser};
use ioc_model::Role;
use std::io::Read;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add an account. The password is read from standard input (never from the command line).
    Add(AddArgs),
    /// List the accounts.
    List {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
pub struct AddArgs {
    /// The sign-in name.
    name: String,
    /// operator, supervisor, leader, admin or oc_staff.
    #[arg(long)]
    role: String,
    /// A unit (commune code) this person works on; repeat for several; none: the province.
    #[arg(long = "unit", value_name = "CODE")]
    units: Vec<String>,
    /// The name shown in timelines (default: the sign-in name).
    #[arg(long)]
    display_name: Option<String>,
    /// Read the password from standard input (its first line).
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Add a node account: a commune OC or a workstation that syncs with this IOC for its
    /// units. Prints the node's token once: put it in the file its `[upstream] token_file`
    /// names.
    Add {
        /// The node's name, as in its own `[node] name` (lowercase letters, digits, '-').
        name: String,
        /// The units (commune codes) it may see and send, comma-separated; none: the province.
        #[arg(long, value_delimiter = ',', value_name = "CODES")]
        units: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
}

pub fn run_node(c: NodeCommand) -> anyhow::Result<()> {
    match c {
        NodeCommand::Add {
            name,
            units,
            common,
        } => {
            let units: Vec<String> = units
                .into_iter()
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .collect();
            let conn = open_db(&common)?;
            let actor = format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".into())
            );
            let key = crate::import::audit_key(&common.load()?)?;
            let token = ioc_engine::auth::add_node(
                &conn,
                &name,
                &units,
                &actor,
                chrono::Utc::now().timestamp_millis(),
                key.as_deref(),
            )?;
            let scope = if units.is_empty() {
                "the whole province".to_string()
            } else {
                units.join(", ")
            };
            eprintln!("added node {name} ({scope}); its token (shown once):");
            println!("{token}");
            Ok(())
        }
    }
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check that no audit entry was altered or removed; exit status 1 naming the first bad
    /// one. A keyed chain is checked with its key (`[audit] key_file`, or `--key`), and a
    /// witness (`ioc audit head` kept elsewhere) proves nothing was rewritten or cut since.
    Verify {
        /// The audit key file (default: `[audit] key_file` of the configuration).
        #[arg(long, value_name = "FILE")]
        key: Option<std::path::PathBuf>,
        /// A head exported earlier by `ioc audit head`.
        #[arg(long, value_name = "FILE")]
        witness: Option<std::path::PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Print the chain's head (JSON) for an outside witness: keep it on another machine,
    /// then `ioc audit verify --witness FILE` shows whether the log still holds it.
    Head {
        #[command(flatten)]
        common: Common,
    },
}

fn open_db(common: &Common) -> anyhow::Result<ioc_engine::store::db::Db> {
    let config = common.load()?;
    let dir = config.data_dir();
    let at = ioc_engine::store::open_configured(&config.store, &dir)
        .with_context(|| format!("the store of data folder {}", dir.display()))?;
    ioc_engine::store::connect_path(&at).map_err(Into::into)
}

pub fn run_user(c: UserCommand) -> anyhow::Result<()> {
    match c {
        UserCommand::Add(a) => {
            let Some(role) = Role::parse(&a.role) else {
                bail!(
                    "unknown role {:?} (operator, supervisor, leader, admin, oc_staff)",
                    a.role
                );
            };
            if !a.password_stdin {
                bail!("give the password on standard input with --password-stdin");
            }
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input)?;
            let password = input.lines().next().unwrap_or("").to_string();
            let conn = open_db(&a.common)?;
            let actor = format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".into())
            );
            let key = crate::import::audit_key(&a.common.load()?)?;
            let info = add_user(
                &conn,
                &NewUser {
                    username: a.name,
                    display_name: a.display_name,
                    role,
                    units: a.units,
                    password,
                },
                &actor,
                chrono::Utc::now().timestamp_millis(),
                key.as_deref(),
            )?;
            let scope = if info.units.is_empty() {
                "the whole province".to_string()
            } else {
                info.units.join(", ")
            };
            println!(
                "added {} ({}, {}); sign-in is now required",
                info.username,
                info.role.as_str(),
                scope
            );
            Ok(())
        }
        UserCommand::List { common } => {
            let conn = open_db(&common)?;
            let mut stmt = conn
                .prepare("SELECT username, role, units, disabled FROM users ORDER BY username")?;
            let rows = stmt.query_map(ioc_engine::store::db::params![], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                ))
            })?;
            for r in rows {
                let (name, role, units, disabled) = r?;
                println!(
                    "{name}\t{role}\t{units}{}",
                    if disabled { "\tdisabled" } else { "" }
                );
            }
            Ok(())
        }
    }
}

pub fn run_audit(c: AuditCommand) -> anyhow::Result<()> {
    match c {
        AuditCommand::Verify {
            key,
            witness,
            common,
        } => {
            let config = common.load()?;
            let conn = open_db(&common)?;
            let key = match key.or(config.audit.key_file.clone()) {
                Some(p) => {
                    if !p.exists() {
                        bail!("no audit key at {}", p.display());
                    }
                    Some(
                        ioc_engine::audit::AuditKey::load_or_create(&p)
                            .map_err(|e| anyhow::anyhow!(e))?,
                    )
                }
                None => None,
            };
            let witness: Option<ioc_engine::audit::Witness> = match &witness {
                Some(p) => Some(
                    serde_json::from_slice(
                        &std::fs::read(p).with_context(|| format!("witness {}", p.display()))?,
                    )
                    .with_context(|| format!("witness {}", p.display()))?,
                ),
                None => None,
            };
            match ioc_engine::audit::verify_with(&conn, key.as_ref(), witness.as_ref()) {
                Ok(n) => {
                    let how = match (&key, &witness) {
                        (Some(k), Some(w)) => {
                            format!(" (keyed {}, holds the witness of entry {})", k.id(), w.seq)
                        }
                        (Some(k), None) => format!(" (keyed {})", k.id()),
                        (None, Some(w)) => format!(" (holds the witness of entry {})", w.seq),
                        (None, None) => String::new(),
                    };
                    println!("audit log intact: {n} entries{how}");
                    Ok(())
                }
                Err(e) => bail!("{e}"),
            }
        }
        AuditCommand::Head { common } => {
            let conn = open_db(&common)?;
            let head = ioc_engine::audit::head(&conn, chrono::Utc::now().timestamp_millis())?;
            println!("{}", serde_json::to_string(&head)?);
            Ok(())
        }
    }
}
