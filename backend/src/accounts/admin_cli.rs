//! `ghosttrack admin create`: the first user of a standalone site, made by the operator.

use std::io::{BufRead, IsTerminal};

use anyhow::Context;

use super::password::{MIN_PASSWORD_CHARS, Password};
use super::{AccountError, Role};
use crate::settings::Settings;
use crate::storage;

/// Where the password comes from when the environment does not give one.
pub const PASSWORD_ENV: &str = "GHOSTTRACK_ADMIN_PASSWORD";

pub async fn create(settings: &Settings, site: &str, email: &str, role: Role) -> anyhow::Result<()> {
    let password = read_password()?;
    if let Err(e) = password.check_policy() {
        anyhow::bail!("{e}");
    }
    let db = storage::connect(&settings.database_url()).await?;
    storage::migrate(&db).await?;
    let user = match super::create_user(&db, site, email, password, role).await {
        Ok(user) => user,
        Err(e @ (AccountError::NoSuchSite(_) | AccountError::InvalidEmail(_) | AccountError::EmailTaken)) => {
            anyhow::bail!("{e}")
        }
        Err(e) => return Err(e).context("cannot create the user"),
    };
    println!("User {} created on {site} with role {}.\n", user.email.as_str(), user.role);
    println!(
        "Next: start the server (`ghosttrack serve`), open {}app and log in with this email and password.",
        settings.public_url()
    );
    Ok(())
}

fn read_password() -> anyhow::Result<Password> {
    if let Ok(pw) = std::env::var(PASSWORD_ENV) {
        return Ok(Password::new(pw));
    }
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password (at least {MIN_PASSWORD_CHARS} characters): "))
            .context("cannot read the password from the terminal")?;
        let again = rpassword::prompt_password("Repeat the password: ")?;
        anyhow::ensure!(first == again, "the passwords differ; nothing was created");
        return Ok(Password::new(first));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
    Ok(Password::new(line.trim_end_matches(['\r', '\n'])))
}
