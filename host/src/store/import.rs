//! Reading an Antigravity-Manager data directory (or a folder of grantpool
//! account files) for `accounts import`: which files are accounts, and the
//! account each holds. The upsert rules it goes through are in
//! [`super::upsert::import_decision`].

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::file::{redact_quoted, TokenData};
use super::upsert::{ImportedAccount, NewAccount};
use super::backend::SkippedFile;

/// What a source folder holds: the accounts read, and the files that are not.
#[derive(Debug, Default)]
pub struct Source {
    /// The folder the account files were read from (`dir/accounts` when it
    /// exists, else `dir`).
    pub dir: PathBuf,
    /// The accounts, with the file each came from, in file-name order.
    pub accounts: Vec<(PathBuf, ImportedAccount)>,
    /// Files (or the folder) that could not be read or are not accounts;
    /// each already logged with `warn`.
    pub failed: Vec<SkippedFile>,
}

/// Reads the `*.json` files of `dir/accounts/`, or of `dir` itself when it
/// has no `accounts` folder. Antigravity-Manager's index (`accounts.json`)
/// is passed over; every other file that is not an account is in
/// [`Source::failed`].
pub fn read_source(dir: &Path) -> Source {
    let accounts = dir.join("accounts");
    let source_dir = if accounts.is_dir() { accounts } else { dir.to_path_buf() };
    let mut source = Source { dir: source_dir.clone(), ..Default::default() };
    let entries = match fs::read_dir(&source_dir) {
        Ok(e) => e,
        Err(e) => {
            source.fail(source_dir, format!("cannot list the folder: {e}"));
            return source;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".json") && !name.starts_with('.') && p.is_file()
        })
        .collect();
    files.sort();
    for path in files {
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                source.fail(path, format!("cannot read: {e}"));
                continue;
            }
        };
        let value: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                source.fail(path, format!("not JSON: {}", redact_quoted(&e.to_string())));
                continue;
            }
        };
        // Antigravity-Manager's index (`accounts.json`) sits beside account files.
        if value.get("token").is_none() && value.get("accounts").is_some_and(Value::is_array) {
            continue;
        }
        match imported_from_value(&value) {
            Ok(account) => source.accounts.push((path, account)),
            Err(cause) => source.fail(path, cause),
        }
    }
    source
}

impl Source {
    /// Records (and logs) a file that is not imported.
    pub(crate) fn fail(&mut self, path: PathBuf, cause: String) {
        tracing::warn!(file = %path.display(), cause = %cause, "not imported: {}: {cause}", path.display());
        self.failed.push(SkippedFile { path, id: None, cause, email: None });
    }
}

/// Reads one account from the JSON of an Antigravity-Manager (or grantpool)
/// account file. The error names the field, never its value.
pub fn imported_from_value(v: &Value) -> Result<ImportedAccount, String> {
    fn field<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
        obj.get(name).filter(|v| !v.is_null())
    }
    fn string(obj: &Value, name: &str, ctx: &str) -> Result<Option<String>, String> {
        match field(obj, name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("field `{ctx}{name}`: expected a string")),
        }
    }
    fn int(obj: &Value, name: &str, ctx: &str) -> Result<Option<i64>, String> {
        match field(obj, name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_f64().map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| format!("field `{ctx}{name}`: expected a number")),
        }
    }
    fn boolean(obj: &Value, name: &str) -> Result<bool, String> {
        match field(obj, name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!("field `{name}`: expected true or false")),
        }
    }
    if !v.is_object() {
        return Err("not an account file: expected a JSON object".to_string());
    }
    let email = string(v, "email", "")?
        .filter(|e| !e.trim().is_empty())
        .ok_or("not an account file: no `email`")?;
    let token = field(v, "token")
        .filter(|t| t.is_object())
        .ok_or("not an account file: no `token` object")?;
    let refresh_token = string(token, "refresh_token", "token.")?
        .filter(|t| !t.trim().is_empty())
        .ok_or("not an account file: no `token.refresh_token`")?;
    let mut t = TokenData::new(
        string(token, "access_token", "token.")?.unwrap_or_default(),
        refresh_token,
        int(token, "expiry_timestamp", "token.")?.unwrap_or(0),
    );
    if let Some(tt) = string(token, "token_type", "token.")?.filter(|s| !s.is_empty()) {
        t.token_type = tt;
    }
    t.project_id = string(token, "project_id", "token.")?.filter(|s| !s.is_empty());
    // Antigravity-Manager's refresh tokens were issued to Antigravity's
    // client; a file that names its own client keeps it.
    t.oauth_client = Some(
        string(token, "oauth_client", "token.")?
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| crate::profiles::ANTIGRAVITY.name.to_string()),
    );
    Ok(ImportedAccount {
        id: string(v, "id", "")?,
        account: NewAccount { email, token: t },
        disabled: boolean(v, "disabled")?,
        disabled_at: int(v, "disabled_at", "")?,
        disabled_reason: string(v, "disabled_reason", "")?,
        proxy_disabled: boolean(v, "proxy_disabled")?,
        proxy_disabled_reason: string(v, "proxy_disabled_reason", "")?,
        proxy_disabled_at: int(v, "proxy_disabled_at", "")?,
        created_at: int(v, "created_at", "")?,
        last_used: int(v, "last_used", "")?,
    })
}

/// One account handled by [`super::Store::import_antigravity`].
#[derive(Debug, Clone)]
pub struct ImportEntry {
    /// The source file.
    pub source: PathBuf,
    /// The id of the account in this store.
    pub id: String,
    /// The account's email.
    pub email: String,
    /// A new account was created.
    pub created: bool,
    /// A disabled account was enabled because the source had new tokens.
    pub recovered: bool,
    /// The account file changed (false: already imported, nothing to do).
    pub changed: bool,
}

/// The result of [`super::Store::import_antigravity`].
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// The folder the account files were read from.
    pub source_dir: PathBuf,
    /// The accounts imported (created, updated or already up to date).
    pub imported: Vec<ImportEntry>,
    /// Source files (or the folder) that could not be read or imported,
    /// with the cause; each is skipped (and logged with `warn`).
    pub failed: Vec<SkippedFile>,
}

impl ImportReport {
    /// How many accounts were created.
    pub fn created(&self) -> usize {
        self.imported.iter().filter(|e| e.created).count()
    }
    /// How many existing accounts changed.
    pub fn updated(&self) -> usize {
        self.imported
            .iter()
            .filter(|e| !e.created && e.changed)
            .count()
    }
    /// How many accounts were already up to date.
    pub fn unchanged(&self) -> usize {
        self.imported.iter().filter(|e| !e.changed).count()
    }
}
