//! Where the token key comes from: `[server] secret_env`, else a key file made once in the
//! data folder (`token.key`, mode 0600), so links already mailed stay valid across runs.
//!
//! The key is loaded once, when a command starts ([`load`]); nothing reads or writes the file
//! after that. A command that only shows things (`check`, `preview`, `status`, ...) loads it
//! with [`Need::Passing`]: it never makes the file, and without one it signs with a key of its
//! own run, since nothing it signs is mailed.

use std::path::Path;

use anyhow::{bail, Context};

use crate::config::{Config, Secret};
use crate::error::UsageError;
use crate::token::TokenKey;

/// What a command needs the key for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Links that are mailed and must keep working: the configured key, else the key file,
    /// made when missing. A `secret_env` the environment lacks is an error.
    Lasting,
    /// Links nobody is mailed (a preview, a check): the configured key or the key file when
    /// there is one, else a random key for this run; nothing is written.
    Passing,
}

/// The token key for a command that needs it as `need`, with `data_dir` the ledger's folder.
pub fn load(config: &Config, data_dir: &Path, need: Need) -> anyhow::Result<TokenKey> {
    if let Some(s) = &config.server.secret {
        return Ok(TokenKey::new(s.clone()));
    }
    if let (Some(var), Need::Lasting) = (&config.server.secret_env, need) {
        // Falling back to the generated key would silently break every link already sent.
        // A variable the config names and the environment lacks is a setup error (exit 2),
        // like any other config error, not a failed send.
        return Err(UsageError::msg(format!(
            "environment variable {var} (named by `server.secret_env` in {}) is not set: \
             unsubscribe links cannot be signed without it; set {var}, or remove the key",
            config.source.display()
        ))
        .into());
    }
    let path = data_dir.join("token.key");
    match std::fs::read_to_string(&path) {
        Ok(k) if k.trim().len() >= 32 => {
            return Ok(TokenKey::new(Secret::new(k.trim().to_string())))
        }
        Ok(_) => bail!(
            "{} is too short to be a token key: delete it to make a new one (old unsubscribe \
             links stop working)",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let key = random_key();
    if need == Need::Passing {
        return Ok(TokenKey::new(Secret::new(key)));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data folder {}", data_dir.display()))?;
    write_private(&path, &key)?;
    tracing::info!(
        path = %path.display(),
        "made a new unsubscribe token key (set `server.secret_env` to manage it yourself)"
    );
    Ok(TokenKey::new(Secret::new(key)))
}

/// 32 random bytes, in hex.
fn random_key() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    crate::token::hex(&bytes)
}

/// Writes `text` to a new file at `path` that only its owner may read.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!("{}{extra}", crate::config::MINIMAL_FOR_TESTS);
        crate::config::parse(&text, Path::new("brief.toml")).unwrap()
    }

    /// A passing need writes nothing and signs with a key of its own run; a lasting one makes
    /// the file once, and every later load (passing too) gets the same key from it.
    #[test]
    fn the_file_is_made_once_and_only_by_a_lasting_need() {
        let dir = tempfile::tempdir().unwrap();
        let c = config("");
        let passing = load(&c, dir.path(), Need::Passing).unwrap();
        assert!(!dir.path().join("token.key").exists());
        let lasting = load(&c, dir.path(), Need::Lasting).unwrap();
        assert!(dir.path().join("token.key").exists());
        assert_ne!(passing.tag("a@example.org"), lasting.tag("a@example.org"));
        for need in [Need::Lasting, Need::Passing] {
            let again = load(&c, dir.path(), need).unwrap();
            assert_eq!(again.tag("a@example.org"), lasting.tag("a@example.org"));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("token.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// A `secret_env` the environment lacks fails a lasting need (links would break), and
    /// the message names the variable, never a value.
    #[test]
    fn a_missing_secret_env_fails_only_a_lasting_need() {
        let dir = tempfile::tempdir().unwrap();
        let c = config("[server]\nsecret_env = \"BRIEF_TEST_UNSET_SECRET\"\n");
        let e = load(&c, dir.path(), Need::Lasting).unwrap_err();
        assert!(e.to_string().contains("BRIEF_TEST_UNSET_SECRET"), "{e}");
        assert!(load(&c, dir.path(), Need::Passing).is_ok());
        assert!(!dir.path().join("token.key").exists());
    }
}
