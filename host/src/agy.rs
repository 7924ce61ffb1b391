//! The sign-in of the Antigravity CLI (`agy`), for `grantpool accounts
//! import agy` and `grantpool accounts import <agy token file>`: where agy
//! keeps its OAuth token, and reading the refresh token out of it.
//!
//! agy signs in with Antigravity's own OAuth client, so its refresh token
//! refreshes with grantpool's built-in `antigravity` client (see
//! [`OAUTH_CLIENT`]); what to do with the token (refresh it, ask userinfo
//! whose it is, upsert by that email) is the CLI's, through
//! [`crate::oauth::OAuth::verify_refresh_token`], as `accounts add` does.
//!
//! Where agy keeps it, as public code and issue threads describe it:
//! Antigravity-Manager `src-tauri/src/modules/integration.rs`
//! (`read_from_system_keyring` / `write_to_system_keyring`) and
//! `src-tauri/src/modules/migration.rs` (`import_all_local_accounts`) for
//! the keyring entry and the value's shape; google-antigravity/antigravity-cli
//! #102 (SSH sessions) and #785 (headless Linux) for the file; and
//! badrisnarayanan/antigravity-claude-proxy PR #360 (imports that file, and
//! says agy uses Antigravity's OAuth client).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

// ---- The sources, in the order they are tried -------------------------

/// The keyring service agy stores its token under.
pub const KEYRING_SERVICE: &str = "gemini";
/// The keyring account (user name) agy stores its token under. (Windows'
/// Credential Manager target is `gemini:antigravity`; grantpool does not
/// read it: use the file, or `grantpool accounts login`.)
pub const KEYRING_ACCOUNT: &str = "antigravity";
/// The file agy writes instead when no keyring is reachable (SSH sessions,
/// headless Linux), relative to the home directory.
pub const TOKEN_FILE: &str = ".gemini/antigravity-cli/antigravity-oauth-token";
/// The prefix go-keyring puts before a base64-encoded value (macOS).
pub const GO_KEYRING_PREFIX: &str = "go-keyring-base64:";
/// The grantpool OAuth client agy's refresh tokens were issued to.
pub const OAUTH_CLIENT: &str = crate::profiles::ANTIGRAVITY.name;

/// How long a keyring program may take (an unlock prompt waits for the user).
const KEYRING_TIMEOUT: Duration = Duration::from_secs(60);
/// Larger than any token file; a bigger file is not agy's.
const MAX_FILE_BYTES: u64 = 1 << 20;

// ---- What is read ------------------------------------------------------

/// agy's token, as read from one of its sources. `Debug` never shows it.
#[derive(Clone)]
pub struct AgyToken {
    /// The refresh token. Never logged or shown.
    pub refresh_token: String,
    /// agy's `auth_method` (`consumer`, …), when recorded.
    pub auth_method: Option<String>,
}

impl std::fmt::Debug for AgyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgyToken").field("auth_method", &self.auth_method).finish_non_exhaustive()
    }
}

/// Where agy's token was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgySource {
    /// The OS keyring, read with this command line (shown as is).
    Keyring(String),
    /// agy's token file (or a file given on the command line).
    File(PathBuf),
}

impl std::fmt::Display for AgySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgySource::Keyring(cmd) => write!(f, "the system keyring (`{cmd}`)"),
            AgySource::File(p) => write!(f, "the file {}", p.display()),
        }
    }
}

/// Why a value is not agy's token. Never holds a value from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Not JSON (the parser's words, quoted text left out).
    #[error("not JSON ({0})")]
    NotJson(String),
    /// A `go-keyring-base64:` value whose rest is not base64 of UTF-8 text.
    #[error("a `{GO_KEYRING_PREFIX}` value that does not decode")]
    BadBase64,
    /// JSON without a `token` object.
    #[error("no `token` object")]
    NoToken,
    /// A `token` without a `refresh_token`.
    #[error("no `token.refresh_token`")]
    NoRefreshToken,
}

/// Why agy's sign-in could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AgyError {
    /// Neither the keyring nor the file holds agy's token; `tried` says what
    /// each source answered.
    #[error(
        "no agy sign-in found ({}); sign in with the Antigravity CLI (`agy`) first, or add the account with `grantpool accounts login`",
        tried.join("; ")
    )]
    NotFound {
        /// One line per source tried.
        tried: Vec<String>,
    },
    /// A source holds something that is not agy's token.
    #[error("{source_name} does not hold an agy sign-in: {why}; sign in with `agy` again, or add the account with `grantpool accounts login`")]
    Malformed {
        /// The source, in words.
        source_name: String,
        /// What is wrong with it.
        why: Malformed,
    },
    /// A file that could not be read.
    #[error("cannot read {}: {cause}; check the path and its permissions", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The OS error.
        cause: String,
    },
}

// ---- Parsing -----------------------------------------------------------

/// Reads agy's token from a stored value: its JSON, or the same JSON as
/// `go-keyring-base64:<base64>` (macOS keychain). Surrounding whitespace is
/// ignored.
pub fn parse(text: &str) -> Result<AgyToken, Malformed> {
    let text = text.trim();
    let decoded;
    let json = match text.strip_prefix(GO_KEYRING_PREFIX) {
        Some(b64) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64.trim().trim_end_matches('=')))
                .map_err(|_| Malformed::BadBase64)?;
            decoded = String::from_utf8(bytes).map_err(|_| Malformed::BadBase64)?;
            decoded.as_str()
        }
        None => text,
    };
    let value: Value =
        serde_json::from_str(json).map_err(|e| Malformed::NotJson(crate::store::file::redact_quoted(&e.to_string())))?;
    token_from_value(&value)
}

/// Reads agy's token from its parsed JSON:
/// `{"token": {"refresh_token": …, …}, "auth_method": …}`.
pub fn token_from_value(v: &Value) -> Result<AgyToken, Malformed> {
    let token = v.get("token").filter(|t| t.is_object()).ok_or(Malformed::NoToken)?;
    let refresh_token = token
        .get("refresh_token")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(Malformed::NoRefreshToken)?;
    Ok(AgyToken {
        refresh_token: refresh_token.to_string(),
        auth_method: v.get("auth_method").and_then(Value::as_str).map(str::to_string),
    })
}

/// Whether a JSON value is agy's token rather than an account file (which
/// also has `token.refresh_token`, but beside an `email` and an `id` or a
/// `token.expiry_timestamp`).
pub fn looks_like_agy(v: &Value) -> bool {
    if v.pointer("/token/refresh_token").and_then(Value::as_str).is_none() {
        return false;
    }
    let account_file = v.get("email").is_some_and(Value::is_string)
        && (v.get("id").is_some() || v.pointer("/token/expiry_timestamp").is_some());
    !account_file
}

/// agy's token in the file `path`, when the file is one: `Ok(None)` when
/// `path` is not a regular file, or holds something else (an account file,
/// other JSON), so the caller can treat it as it would otherwise.
pub fn read_token_file(path: &Path) -> Result<Option<AgyToken>, AgyError> {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= MAX_FILE_BYTES) {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| AgyError::Unreadable { path: path.to_path_buf(), cause: e.to_string() })?;
    let text = text.trim();
    if text.starts_with(GO_KEYRING_PREFIX) {
        return parse(text)
            .map(Some)
            .map_err(|why| AgyError::Malformed { source_name: AgySource::File(path.to_path_buf()).to_string(), why });
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) if looks_like_agy(&v) => token_from_value(&v)
            .map(Some)
            .map_err(|why| AgyError::Malformed { source_name: AgySource::File(path.to_path_buf()).to_string(), why }),
        // agy's shape without a refresh token: say so rather than "not a folder".
        Ok(v) if v.get("auth_method").is_some() && v.get("email").is_none() => Err(AgyError::Malformed {
            source_name: AgySource::File(path.to_path_buf()).to_string(),
            why: token_from_value(&v).err().unwrap_or(Malformed::NoRefreshToken),
        }),
        _ => Ok(None),
    }
}

// ---- Finding agy's sign-in --------------------------------------------

/// What asking the keyring gave.
#[derive(Debug)]
pub enum KeyringAnswer {
    /// The stored value (a secret: never shown), and the command that read it.
    Found {
        /// The value.
        value: String,
        /// The command line, for messages.
        command: String,
    },
    /// No value; the words say why (no such entry, no keyring program, …).
    Missing(String),
}

/// agy's token from the keyring (first) or its file under `home`, with the
/// source it came from. `keyring` asks the OS keyring (see
/// [`ask_keyring`]). A keyring value that is not agy's token is passed over
/// for the file (and named in the error when the file has none either).
pub fn find(home: Option<&Path>, keyring: impl FnOnce() -> KeyringAnswer) -> Result<(AgySource, AgyToken), AgyError> {
    let mut tried = Vec::new();
    match keyring() {
        KeyringAnswer::Found { value, command } => match parse(&value) {
            Ok(token) => return Ok((AgySource::Keyring(command), token)),
            Err(why) => {
                tracing::warn!("agy's keyring entry (`{command}`) is not agy's token: {why}; trying the file");
                tried.push(format!("keyring (`{command}`): not agy's token: {why}"));
            }
        },
        KeyringAnswer::Missing(why) => tried.push(format!("keyring: {why}")),
    }
    match home {
        None => tried.push(format!("file ~/{TOKEN_FILE}: no home directory ($HOME is not set)")),
        Some(home) => {
            let path = home.join(TOKEN_FILE);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let token = parse(&text)
                        .map_err(|why| AgyError::Malformed { source_name: AgySource::File(path.clone()).to_string(), why })?;
                    return Ok((AgySource::File(path), token));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => tried.push(format!("file {}: not there", path.display())),
                Err(e) => return Err(AgyError::Unreadable { path, cause: e.to_string() }),
            }
        }
    }
    Err(AgyError::NotFound { tried })
}

/// [`find`] with this machine's keyring and home directory.
pub fn find_here() -> Result<(AgySource, AgyToken), AgyError> {
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")).filter(|h| !h.is_empty()).map(PathBuf::from);
    find(home.as_deref(), ask_keyring)
}

/// The command that reads agy's keyring entry on this OS: Linux (and the
/// other Unixes with a Secret Service) `secret-tool`, macOS `security`;
/// `None` where grantpool reads no keyring (Windows).
pub fn keyring_command() -> Option<(&'static str, Vec<&'static str>)> {
    if cfg!(target_os = "macos") {
        Some(("security", vec!["find-generic-password", "-s", KEYRING_SERVICE, "-a", KEYRING_ACCOUNT, "-w"]))
    } else if cfg!(unix) {
        Some(("secret-tool", vec!["lookup", "service", KEYRING_SERVICE, "username", KEYRING_ACCOUNT]))
    } else {
        None
    }
}

/// Asks this OS's keyring for agy's entry (see [`keyring_command`]); a
/// missing program, a missing entry, a program that fails or hangs are all
/// [`KeyringAnswer::Missing`], with the reason.
pub fn ask_keyring() -> KeyringAnswer {
    let Some((program, args)) = keyring_command() else {
        return KeyringAnswer::Missing(format!(
            "not read on this OS (Credential Manager target `{KEYRING_SERVICE}:{KEYRING_ACCOUNT}`)"
        ));
    };
    let command = std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    match run(program, &args, KEYRING_TIMEOUT) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => KeyringAnswer::Missing(format!("`{program}` is not installed (not on PATH)")),
        Err(e) => KeyringAnswer::Missing(format!("`{command}` could not run: {e}")),
        Ok(None) => KeyringAnswer::Missing(format!("`{command}` gave no answer within {} s", KEYRING_TIMEOUT.as_secs())),
        Ok(Some((code, out, err))) => {
            if code == Some(0) && !out.trim().is_empty() {
                return KeyringAnswer::Found { value: out, command };
            }
            // The program's own words (never the secret: it printed none).
            let said = err.lines().map(str::trim).find(|l| !l.is_empty()).map(|l| crate::util::truncate_utf8(l, 200).to_string());
            KeyringAnswer::Missing(match said {
                Some(s) => format!("no entry (`{command}`: {s})"),
                None => format!("no entry (`{command}`)"),
            })
        }
    }
}

/// Runs `program args`, with no input; `Ok(None)` when it has not ended
/// within `limit` (it is killed). Else its exit code, stdout and stderr.
fn run(program: &str, args: &[&str], limit: Duration) -> std::io::Result<Option<(Option<i32>, String, String)>> {
    let mut child = Command::new(program).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.by_ref().take(MAX_FILE_BYTES).read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("piped stdout")));
    let err = reader(Box::new(child.stderr.take().expect("piped stderr")));
    let until = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    Ok(status.map(|s| (s.code(), out, err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"token":{"access_token":"ya29.secret-access","token_type":"Bearer","refresh_token":"1//secret-refresh","expiry":"2026-10-03T14:57:51.447348-03:00"},"auth_method":"consumer","id_token":"eyJ.x.y"}"#;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn parses_the_token_file() {
        let t = parse(FILE).unwrap();
        assert_eq!(t.refresh_token, "1//secret-refresh");
        assert_eq!(t.auth_method.as_deref(), Some("consumer"));
        assert!(!format!("{t:?}").contains("secret"), "Debug shows no token: {t:?}");
        // With a newline, as files and `secret-tool` end.
        assert_eq!(parse(&format!("{FILE}\n")).unwrap().refresh_token, "1//secret-refresh");
    }

    #[test]
    fn parses_the_go_keyring_base64_form() {
        let t = parse(&format!("{GO_KEYRING_PREFIX}{}\n", b64(FILE))).unwrap();
        assert_eq!(t.refresh_token, "1//secret-refresh");
        // Without the padding, too.
        let unpadded = b64(FILE).trim_end_matches('=').to_string();
        assert_eq!(parse(&format!("{GO_KEYRING_PREFIX}{unpadded}")).unwrap().refresh_token, "1//secret-refresh");
        assert_eq!(parse(&format!("{GO_KEYRING_PREFIX}!!not base64!!")).unwrap_err(), Malformed::BadBase64);
    }

    #[test]
    fn a_missing_refresh_token_is_an_error_that_names_the_field_only() {
        let no_rt = r#"{"token":{"access_token":"ya29.secret-access","token_type":"Bearer","expiry":"2026-10-03T14:57:51Z"},"auth_method":"consumer"}"#;
        assert_eq!(parse(no_rt).unwrap_err(), Malformed::NoRefreshToken);
        assert_eq!(parse(r#"{"token":{"refresh_token":"  "}}"#).unwrap_err(), Malformed::NoRefreshToken);
        assert_eq!(parse(r#"{"auth_method":"consumer"}"#).unwrap_err(), Malformed::NoToken);
        let e = parse(r#"{"token": "1//secret-refresh"#).unwrap_err();
        assert!(matches!(e, Malformed::NotJson(_)), "{e:?}");
        assert!(!e.to_string().contains("secret"), "{e}");
        let e = AgyError::Malformed { source_name: "the file x".into(), why: Malformed::NoRefreshToken };
        assert!(e.to_string().contains("token.refresh_token") && e.to_string().contains("agy"), "{e}");
    }

    #[test]
    fn agy_tokens_are_told_from_account_files() {
        assert!(looks_like_agy(&serde_json::from_str(FILE).unwrap()));
        let account = serde_json::json!({"id": "b9c1", "email": "a@example.com",
            "token": {"access_token": "x", "refresh_token": "1//r", "expiry_timestamp": 1_700_003_600}});
        assert!(!looks_like_agy(&account));
        let am = serde_json::json!({"email": "a@example.com", "token": {"refresh_token": "1//r", "expiry_timestamp": 1}});
        assert!(!looks_like_agy(&am));
        assert!(!looks_like_agy(&serde_json::json!({"accounts": []})));
    }

    #[test]
    fn the_keyring_wins_over_the_file_and_both_are_named_when_neither_has_it() {
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join(TOKEN_FILE);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, FILE).unwrap();
        let other = FILE.replace("1//secret-refresh", "1//from-keyring");
        let keyring = || KeyringAnswer::Found { value: other.clone(), command: "secret-tool lookup …".into() };
        let (source, t) = find(Some(home.path()), keyring).unwrap();
        assert_eq!(source, AgySource::Keyring("secret-tool lookup …".into()));
        assert_eq!(t.refresh_token, "1//from-keyring");

        let (source, t) = find(Some(home.path()), || KeyringAnswer::Missing("no entry".into())).unwrap();
        assert_eq!(source, AgySource::File(file.clone()));
        assert_eq!(t.refresh_token, "1//secret-refresh");

        // A keyring value that is not agy's: the file still serves.
        let (source, _) = find(Some(home.path()), || KeyringAnswer::Found { value: "garbage".into(), command: "c".into() }).unwrap();
        assert_eq!(source, AgySource::File(file.clone()));

        let empty = tempfile::tempdir().unwrap();
        let e = find(Some(empty.path()), || KeyringAnswer::Missing("`secret-tool` is not installed (not on PATH)".into())).unwrap_err();
        let words = e.to_string();
        assert!(words.contains("secret-tool") && words.contains("antigravity-oauth-token") && words.contains("grantpool accounts login"), "{words}");

        // A broken file is named, and its cause, never its value.
        std::fs::write(&file, r#"{"token":{"access_token":"ya29.secret"},"auth_method":"consumer"}"#).unwrap();
        let e = find(Some(home.path()), || KeyringAnswer::Missing("no entry".into())).unwrap_err().to_string();
        assert!(e.contains("antigravity-oauth-token") && e.contains("token.refresh_token") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn a_token_file_given_by_path_is_recognised_by_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let agy = dir.path().join("antigravity-oauth-token");
        std::fs::write(&agy, FILE).unwrap();
        assert_eq!(read_token_file(&agy).unwrap().unwrap().refresh_token, "1//secret-refresh");
        let wrapped = dir.path().join("wrapped");
        std::fs::write(&wrapped, format!("{GO_KEYRING_PREFIX}{}", b64(FILE))).unwrap();
        assert!(read_token_file(&wrapped).unwrap().is_some());
        let account = dir.path().join("a.json");
        std::fs::write(&account, r#"{"id":"b9c1","email":"a@example.com","token":{"refresh_token":"1//r","expiry_timestamp":1}}"#).unwrap();
        assert!(read_token_file(&account).unwrap().is_none(), "an account file is not agy's");
        assert!(read_token_file(dir.path()).unwrap().is_none(), "a folder is not a token file");
        let broken = dir.path().join("broken");
        std::fs::write(&broken, r#"{"token":{"access_token":"ya29.x"},"auth_method":"consumer"}"#).unwrap();
        assert!(matches!(read_token_file(&broken), Err(AgyError::Malformed { why: Malformed::NoRefreshToken, .. })));
    }
}
