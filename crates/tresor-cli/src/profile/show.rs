//! `tresor profile list` and `tresor profile show NAME [--json]`: the effective settings of a
//! profile, each with its origin; secrets masked (a password as `***`).

use super::merge::{Origin, given, password_given};
use super::{Chosen, load};
use crate::args::{Global, ProfileCommand};
use crate::render::{self, Mode, Outcome, Text};
use anyhow::Result;
use clap::ArgMatches;
use serde::Serialize;
use serde_json::Value;
use toml::Spanned;

/// The effective settings of one profile (docs/cli.md, JSON `profile show`).
#[derive(Debug, Serialize)]
pub struct Shown {
    /// The profile's name.
    pub profile: String,
    /// The configuration file.
    pub file: String,
    /// Every setting a profile can hold, in the documented order.
    pub settings: Vec<Setting>,
}

/// One setting.
#[derive(Debug, Serialize)]
pub struct Setting {
    /// The key of the configuration file.
    pub key: &'static str,
    /// Its value (null: not set); a password is `"***"`.
    pub value: Value,
    /// `flag`, `env NAME`, `FILE:LINE` or `default`.
    pub origin: String,
}

/// The profile names of the configuration file (`profile list`).
#[derive(Debug, Serialize)]
pub struct Listed {
    /// The configuration file.
    pub file: String,
    /// The names, sorted.
    pub profiles: Vec<String>,
}

/// Run `tresor profile …` (`chosen`: the profile `show` names, loaded by `main`).
///
/// # Errors
/// The configuration file cannot be read.
pub fn run(c: &ProfileCommand, g: &Global, m: &ArgMatches, chosen: Option<&Chosen>) -> Result<i32> {
    let mode = Mode {
        json: g.json,
        quiet: g.quiet,
    };
    match (c, chosen) {
        (ProfileCommand::Show { .. }, Some(chosen)) => render::emit(&shown(g, m, chosen), mode)?,
        (ProfileCommand::Schema, _) => println!("{}", super::schema::text()),
        _ => {
            let file = load::locate(g.config.as_deref())?;
            let (cfg, _) = load::read(&file)?;
            let listed = Listed {
                file: file.display().to_string(),
                profiles: cfg.profiles.into_keys().collect(),
            };
            render::emit(&listed, mode)?;
        }
    }
    Ok(0)
}

/// A setting of the file only (`key`'s value or null).
pub(super) fn file_setting<T: Serialize>(
    c: &Chosen,
    key: &'static str,
    v: Option<&Spanned<T>>,
) -> Setting {
    match v {
        Some(v) => Setting {
            key,
            value: serde_json::to_value(v.get_ref()).unwrap_or(Value::Null),
            origin: c.at(v),
        },
        None => Setting {
            key,
            value: Value::Null,
            origin: Origin::Default.to_string(),
        },
    }
}

/// A global setting: the user's (flag or environment) if given, else the file's.
fn global_setting<T: Serialize>(
    c: &Chosen,
    m: &ArgMatches,
    (key, id, env): (&'static str, &str, &'static str),
    effective: Option<impl Serialize>,
    v: Option<&Spanned<T>>,
) -> Setting {
    match given(m, id, Some(env)) {
        Some(origin) => Setting {
            key,
            value: serde_json::to_value(effective).unwrap_or(Value::Null),
            origin: origin.to_string(),
        },
        None => file_setting(c, key, v),
    }
}

/// The effective settings of `c` under the command line `m` (`g`: the merged global options).
pub fn shown(g: &Global, m: &ArgMatches, c: &Chosen) -> Shown {
    let p = &c.profile;
    let repo = ("repository", "repo", "TRESOR_REPOSITORY");
    let mut s = vec![global_setting(
        c,
        m,
        repo,
        g.repo.as_ref(),
        p.repository.as_ref(),
    )];
    s.extend(passwords(g, m, c));
    let cache = ("cache_dir", "cache_dir", "TRESOR_CACHE_DIR");
    s.push(global_setting(
        c,
        m,
        cache,
        g.cache_dir.as_ref(),
        p.cache_dir.as_ref(),
    ));
    let key_file = ("key_file", "key_file", "TRESOR_KEY_FILE");
    s.push(global_setting(
        c,
        m,
        key_file,
        g.key_file.as_ref(),
        p.key_file.as_ref(),
    ));
    s.extend([
        file_setting(c, "host", p.host.as_ref()),
        file_setting(c, "tags", p.tags.as_ref()),
        file_setting(c, "sources", p.sources.as_ref()),
        file_setting(c, "excludes", p.excludes.as_ref()),
        file_setting(c, "exclude_files", p.exclude_files.as_ref()),
        file_setting(c, "iexcludes", p.iexcludes.as_ref()),
        file_setting(c, "exclude_caches", p.exclude_caches.as_ref()),
        file_setting(c, "one_file_system", p.one_file_system.as_ref()),
        file_setting(c, "exclude_larger_than", p.exclude_larger_than.as_ref()),
        file_setting(c, "keep_last", p.keep_last.as_ref()),
        file_setting(c, "keep_hourly", p.keep_hourly.as_ref()),
        file_setting(c, "keep_daily", p.keep_daily.as_ref()),
        file_setting(c, "keep_weekly", p.keep_weekly.as_ref()),
        file_setting(c, "keep_monthly", p.keep_monthly.as_ref()),
        file_setting(c, "keep_yearly", p.keep_yearly.as_ref()),
        file_setting(c, "keep_within", p.keep_within.as_ref()),
        file_setting(c, "keep_tags", p.keep_tags.as_ref()),
        file_setting(c, "after_backup", p.after_backup.as_ref()),
        file_setting(
            c,
            "check_read_data_subset",
            p.check_read_data_subset.as_ref(),
        ),
        file_setting(c, "hooks", p.hooks.as_ref()),
        notify_setting(c),
        file_setting(c, "metrics_textfile", p.metrics_textfile.as_ref()),
        file_setting(c, "pushgateway", p.pushgateway.as_ref()),
        file_setting(c, "max_age", p.max_age.as_ref()),
        file_setting(c, "drill_sample", p.drill_sample.as_ref()),
    ]);
    s.extend(super::options::shown(c));
    s.extend(options(g, m, c));
    s.extend(remote_options(g, m, c));
    for setting in &mut s {
        let url = matches!(setting.key, "repository" | "pushgateway");
        if let (true, Value::String(v)) = (url, &mut setting.value) {
            *v = crate::notify::mask_credentials(v);
        }
    }
    Shown {
        profile: c.name.clone(),
        file: c.file.display().to_string(),
        settings: s,
    }
}

/// `notify`, its URLs masked ([`crate::notify::mask_url`]) and its headers' values `***`.
fn notify_setting(c: &Chosen) -> Setting {
    let mut s = file_setting(c, "notify", c.profile.notify.as_ref());
    crate::notify::mask(&mut s.value);
    s
}

/// The other global options ([`super::merge::GLOBAL_KEYS`] after `cache_dir`).
fn options(g: &Global, m: &ArgMatches, c: &Chosen) -> Vec<Setting> {
    let p = &c.profile;
    vec![
        global_setting(
            c,
            m,
            key("insecure_password_file"),
            Some(g.insecure_password_file),
            p.insecure_password_file.as_ref(),
        ),
        global_setting(c, m, key("no_cache"), Some(g.no_cache), p.no_cache.as_ref()),
        global_setting(
            c,
            m,
            key("insecure_http"),
            Some(g.insecure_http),
            p.insecure_http.as_ref(),
        ),
        global_setting(
            c,
            m,
            key("retry_for"),
            Some(g.retry_for),
            p.retry_for.as_ref(),
        ),
        global_setting(
            c,
            m,
            key("limit_upload"),
            g.limit_upload,
            p.limit_upload.as_ref(),
        ),
        global_setting(
            c,
            m,
            key("limit_download"),
            g.limit_download,
            p.limit_download.as_ref(),
        ),
    ]
}

/// A global option's (key, argument id, variable) ([`super::merge::GLOBAL_KEYS`]).
fn key(k: &'static str) -> (&'static str, &'static str, &'static str) {
    let (key, id, env) = super::merge::GLOBAL_KEYS
        .iter()
        .find(|e| e.0 == k)
        .copied()
        .expect("a global key");
    (key, id, env.unwrap_or("-"))
}

/// The S3 and server options.
fn remote_options(g: &Global, m: &ArgMatches, c: &Chosen) -> Vec<Setting> {
    let p = &c.profile;
    let (s3, sv) = (&g.s3, &g.server);
    vec![
        global_setting(
            c,
            m,
            key("s3_storage_class_data"),
            s3.storage_class_data.as_ref(),
            p.s3_storage_class_data.as_ref(),
        ),
        global_setting(
            c,
            m,
            key("s3_storage_class_metadata"),
            s3.storage_class_metadata.as_ref(),
            p.s3_storage_class_metadata.as_ref(),
        ),
        global_setting(c, m, key("s3_sse"), s3.sse.as_ref(), p.s3_sse.as_ref()),
        global_setting(
            c,
            m,
            key("s3_sse_kms_key_id"),
            s3.sse_kms_key_id.as_ref(),
            p.s3_sse_kms_key_id.as_ref(),
        ),
        global_setting(
            c,
            m,
            key("s3_connections"),
            Some(s3.connections),
            p.s3_connections.as_ref(),
        ),
        global_setting(c, m, key("tls_ca"), sv.tls_ca.as_ref(), p.tls_ca.as_ref()),
        global_setting(
            c,
            m,
            key("server_token_file"),
            sv.server_token_file.as_ref(),
            p.server_token_file.as_ref(),
        ),
        global_setting(
            c,
            m,
            key("server_command"),
            sv.server_command.as_ref(),
            p.server_command.as_ref(),
        ),
    ]
}

/// `password_file`, `password_command`, `password`: the user's sources replace all three of
/// the profile's; a password itself is only ever `***`.
fn passwords(g: &Global, m: &ArgMatches, c: &Chosen) -> Vec<Setting> {
    let p = &c.profile;
    let file = ("password_file", "password_file", "TRESOR_PASSWORD_FILE");
    let command = (
        "password_command",
        "password_command",
        "TRESOR_PASSWORD_COMMAND",
    );
    let cred = (
        "password_credential",
        "password_credential",
        "TRESOR_PASSWORD_CREDENTIAL",
    );
    if !password_given(m) {
        let masked = p.password.as_ref().map(|v| Spanned::new(v.span(), "***"));
        return vec![
            file_setting(c, "password_file", p.password_file.as_ref()),
            file_setting(c, "password_command", p.password_command.as_ref()),
            file_setting(c, "password", masked.as_ref()),
            file_setting(c, "password_credential", p.password_credential.as_ref()),
        ];
    }
    let none: Option<&Spanned<String>> = None;
    let env = std::env::var_os("TRESOR_PASSWORD").is_some();
    vec![
        global_setting(c, m, file, g.password_file.as_ref(), none),
        global_setting(c, m, command, g.password_command.as_ref(), none),
        Setting {
            key: "password",
            value: if env { "***".into() } else { Value::Null },
            origin: if env {
                Origin::Env("TRESOR_PASSWORD").to_string()
            } else {
                Origin::Default.to_string()
            },
        },
        global_setting(c, m, cred, g.password_credential.as_ref(), none),
    ]
}

impl Outcome for Shown {
    fn text(&self, t: &mut Text) {
        t.info(format!("profile {} of {}", self.profile, self.file));
        let width = self.settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
        for s in &self.settings {
            let value = match &s.value {
                Value::Null => "-".to_string(),
                Value::String(v) => v.clone(),
                v => v.to_string(),
            };
            t.out(format!("{:width$}  {value}  ({})", s.key, s.origin));
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_pretty(self)
    }
}

impl Outcome for Listed {
    fn text(&self, t: &mut Text) {
        t.info(format!("profiles of {}", self.file));
        for p in &self.profiles {
            t.out(p.clone());
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_pretty(self)
    }
}
