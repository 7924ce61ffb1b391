//! `grantpool accounts import agy` and `accounts import <agy token file>`:
//! the Antigravity CLI's sign-in (its keyring entry, else its token file)
//! becomes an Antigravity account, refreshed with Antigravity's client and
//! upserted by the email Google names — against the fake Google, which binds
//! each refresh token to Antigravity's client.

mod common;

use std::path::{Path, PathBuf};

use common::Env;
use grantpool_tests::fake::{AccountSpec, Endpoint, RecordedRequest, ANTIGRAVITY_CLIENT_ID};
use serde_json::{json, Value};

const MODEL: &str = "gemini-2.5-pro";
const TOKEN_FILE: &str = ".gemini/antigravity-cli/antigravity-oauth-token";

/// agy's stored token, as agy writes it (file and keyring alike).
fn agy_json(refresh_token: &str) -> String {
    json!({
        "token": {"access_token": "ya29.agy-stale", "token_type": "Bearer", "refresh_token": refresh_token,
                  "expiry": "2026-10-03T14:57:51.447348-03:00"},
        "auth_method": "consumer",
        "id_token": "eyJhbGciOi.agy.id"
    })
    .to_string()
}

/// A home directory holding agy's token file with `refresh_token`.
fn home_with_file(refresh_token: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join(TOKEN_FILE);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, agy_json(refresh_token)).unwrap();
    home
}

/// A folder for PATH: empty, or with a `secret-tool` that answers agy's
/// lookup with `keyring_value` (and fails for anything else).
fn bin_dir(keyring_value: Option<&str>) -> tempfile::TempDir {
    let bin = tempfile::tempdir().unwrap();
    if let Some(value) = keyring_value {
        let script = bin.path().join("secret-tool");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nif [ \"$*\" = \"lookup service gemini username antigravity\" ]; then printf '%s' '{value}'; exit 0; fi\necho \"unexpected: $*\" >&2\nexit 1\n"
            ),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    bin
}

async fn import(env: &Env, what: &str, home: &Path, path: &Path) -> (bool, String, String) {
    env.cli_env(&["accounts", "import", what], &[("HOME", home.as_os_str()), ("PATH", path.as_os_str())]).await
}

async fn token_calls(env: &Env) -> Vec<RecordedRequest> {
    env.fake.requests().await.into_iter().filter(|r| r.endpoint == Some(Endpoint::Token)).collect()
}

fn no_secrets(out: &str, err: &str, tokens: &[&str]) {
    for t in tokens.iter().chain(&["ya29.", "eyJhbGciOi"]) {
        assert!(!out.contains(t) && !err.contains(t), "no token ({t}) in the output:\n{out}\n{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_agy_reads_the_token_file_and_the_account_serves_with_the_antigravity_client() {
    let env = Env::new().await;
    // The default client of this config is Gemini CLI's: agy's token must
    // still be refreshed with Antigravity's.
    let config = std::fs::read_to_string(env.config_path()).unwrap().replacen("[oauth]\n", "[oauth]\nclient = \"gemini-cli\"\n", 1);
    std::fs::write(env.config_path(), config).unwrap();
    env.fake.add_account(AccountSpec::new("ana@example.com", "1//agy-secret-ana").client_id(ANTIGRAVITY_CLIENT_ID)).await;
    let home = home_with_file("1//agy-secret-ana");
    let bin = bin_dir(None);

    let (ok, out, err) = import(&env, "agy", home.path(), bin.path()).await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("antigravity-oauth-token"), "says which source: {out}");
    assert!(out.contains("added") && out.contains("ana@example.com"), "{out}");
    no_secrets(&out, &err, &["1//agy-secret-ana"]);

    let id = env.account_id("ana@example.com").expect("account written under the email userinfo names");
    let file = env.account_file(&id);
    assert_eq!(file["token"]["oauth_client"], "antigravity", "{file}");
    assert_eq!(file["token"]["refresh_token"], "1//agy-secret-ana");
    let calls = token_calls(&env).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].body["client_id"], ANTIGRAVITY_CLIENT_ID, "refreshed with Antigravity's client: {:?}", calls[0].body);
    assert_eq!(calls[0].status, Some(200));

    let proxy = env.start().await;
    let (status, account, body) = proxy.gemini(MODEL, "hi").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(account.as_deref(), Some(id.as_str()));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_agy_re_enables_a_disabled_account_with_that_email() {
    let env = Env::new().await;
    let id = env.add_account("dee@example.com", "1//old-secret-dee").await;
    env.edit_account(&id, |v| {
        v["disabled"] = true.into();
        v["disabled_at"] = 1_700_000_000.into();
        v["disabled_reason"] = "invalid_grant: Token has been expired or revoked.".into();
    });
    // agy signed in again: a new refresh token for the same account.
    env.fake.add_account(AccountSpec::new("dee@example.com", "1//agy-secret-dee")).await;
    let home = home_with_file("1//agy-secret-dee");
    let bin = bin_dir(None);

    let (ok, out, err) = import(&env, "agy", home.path(), bin.path()).await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("updated") && out.contains("dee@example.com") && out.contains("enabled again"), "{out}");
    no_secrets(&out, &err, &["1//agy-secret-dee", "1//old-secret-dee"]);
    assert_eq!(env.account_files().len(), 1, "upserted by email, not added");
    let file = env.account_file(&id);
    assert_eq!(file["disabled"], false, "{file}");
    assert!(file.get("disabled_reason").is_none_or(Value::is_null), "{file}");
    assert_eq!(file["token"]["refresh_token"], "1//agy-secret-dee");
    assert_eq!(file["token"]["oauth_client"], "antigravity");

    let proxy = env.start().await;
    assert_eq!(proxy.gemini(MODEL, "hi").await.0, 200);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyring_wins_over_the_file() {
    let env = Env::new().await;
    env.fake.add_account(AccountSpec::new("kay@example.com", "1//agy-secret-kay")).await;
    env.fake.add_account(AccountSpec::new("fay@example.com", "1//agy-secret-fay")).await;
    let home = home_with_file("1//agy-secret-fay");
    let bin = bin_dir(Some(&agy_json("1//agy-secret-kay")));

    let (ok, out, err) = import(&env, "agy", home.path(), bin.path()).await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("keyring") && out.contains("secret-tool"), "says which source: {out}");
    assert!(out.contains("added") && out.contains("kay@example.com"), "{out}");
    no_secrets(&out, &err, &["1//agy-secret-kay", "1//agy-secret-fay"]);
    assert!(env.account_id("kay@example.com").is_some());
    assert!(env.account_id("fay@example.com").is_none(), "the file is not read when the keyring has the token");
    assert_eq!(env.account_file(&env.account_id("kay@example.com").unwrap())["token"]["oauth_client"], "antigravity");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_of_the_token_file_by_path() {
    let env = Env::new().await;
    env.fake.add_account(AccountSpec::new("pia@example.com", "1//agy-secret-pia")).await;
    let home = home_with_file("1//agy-secret-pia");
    let path: PathBuf = home.path().join(TOKEN_FILE);

    let (ok, out, err) = env.cli(&["accounts", "import", path.to_str().unwrap()]).await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains(path.to_str().unwrap()), "says which file: {out}");
    assert!(out.contains("added") && out.contains("pia@example.com"), "{out}");
    no_secrets(&out, &err, &["1//agy-secret-pia"]);
    let id = env.account_id("pia@example.com").unwrap();
    assert_eq!(env.account_file(&id)["token"]["oauth_client"], "antigravity");
    assert_eq!(token_calls(&env).await[0].body["client_id"], ANTIGRAVITY_CLIENT_ID);

    // Again: the same account, updated (upsert by email), still one file.
    let (ok, out, err) = env.cli(&["accounts", "import", path.to_str().unwrap()]).await;
    assert!(ok && out.contains("updated") && out.contains("pia@example.com"), "{out}\n{err}");
    assert_eq!(env.account_files().len(), 1);

    // A token Google refuses: a clear error naming the file, nothing written.
    std::fs::write(&path, agy_json("1//agy-secret-unknown")).unwrap();
    let (ok, out, err) = env.cli(&["accounts", "import", path.to_str().unwrap()]).await;
    assert!(!ok, "{out}");
    assert!(err.contains("antigravity-oauth-token") && err.contains("nothing was written") && err.contains("agy"), "{err}");
    no_secrets(&out, &err, &["1//agy-secret-unknown"]);
    assert_eq!(env.account_files().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_agy_sign_in_is_a_clear_error() {
    let env = Env::new().await;
    let home = tempfile::tempdir().unwrap();
    let bin = bin_dir(None);
    let (ok, out, err) = import(&env, "agy", home.path(), bin.path()).await;
    assert!(!ok, "{out}");
    for words in ["no agy sign-in found", "secret-tool", TOKEN_FILE, "`agy`", "grantpool accounts login"] {
        assert!(err.contains(words), "the error says {words:?}: {err}");
    }
    assert!(!err.contains("cannot list the folder"), "{err}");

    // A keyring without agy's entry (secret-tool answers nothing) and no file.
    let bin = bin_dir(Some("")); // prints nothing: no entry
    let (ok, _, err) = import(&env, "agy", home.path(), bin.path()).await;
    assert!(!ok && err.contains("no entry") && err.contains(TOKEN_FILE), "{err}");
    assert!(env.account_files().is_empty());
}
