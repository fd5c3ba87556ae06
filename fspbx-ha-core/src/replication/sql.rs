//! Quoting of SQL identifiers and literals, and libpq connection strings.
//!
//! Every name that reaches SQL text goes through [`ident`] (always double-quoted, so keywords,
//! upper case, spaces and quotes are safe) and every value through [`literal`].

use std::fmt::Write as _;

/// Quotes an SQL identifier: always double quotes, embedded quotes doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A schema-qualified name, both parts quoted.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// Quotes an SQL string literal. Backslashes switch to the `E''` form so the result is right
/// whatever `standard_conforming_strings` says.
pub fn literal(value: &str) -> String {
    if value.contains('\\') {
        format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

/// One value of a libpq `key=value` connection string, quoted.
pub fn conninfo_value(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c));
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// The text shown instead of a password.
pub const REDACTED: &str = "<redacted>";

/// The connection string a subscriber uses to reach its publisher. The password is never part
/// of this value: [`ConnInfo::render`] shows `password=<redacted>` and only
/// [`ConnInfo::with_password`] (used when the statement is sent) puts it in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnInfo {
    /// Host or address of the publisher as the subscriber sees it.
    pub host: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// Database.
    pub dbname: Option<String>,
    /// Role.
    pub user: Option<String>,
    /// Whether the string carries a password (its value is never kept here).
    pub has_password: bool,
    /// Other keywords, in order (values kept; `password` never among them).
    pub other: Vec<(String, String)>,
}

impl ConnInfo {
    /// A connection string to `host:port/dbname` as `user`, with a password.
    pub fn new(host: &str, port: u16, dbname: &str, user: &str) -> ConnInfo {
        ConnInfo {
            host: Some(host.to_string()),
            port: Some(port),
            dbname: Some(dbname.to_string()),
            user: Some(user.to_string()),
            has_password: true,
            other: vec![("application_name".into(), "fspbx-ha".into())],
        }
    }

    fn render_with(&self, password: Option<&str>) -> String {
        let mut s = String::new();
        let mut put = |k: &str, v: &str| {
            if !s.is_empty() {
                s.push(' ');
            }
            let _ = write!(s, "{k}={v}");
        };
        if let Some(h) = &self.host {
            put("host", &conninfo_value(h));
        }
        if let Some(p) = self.port {
            put("port", &p.to_string());
        }
        if let Some(d) = &self.dbname {
            put("dbname", &conninfo_value(d));
        }
        if let Some(u) = &self.user {
            put("user", &conninfo_value(u));
        }
        if self.has_password {
            match password {
                Some(pw) => put("password", &conninfo_value(pw)),
                None => put("password", REDACTED),
            }
        }
        for (k, v) in &self.other {
            put(k, &conninfo_value(v));
        }
        s
    }

    /// The string with `password=<redacted>`: safe to print, log or serialize.
    pub fn render(&self) -> String {
        self.render_with(None)
    }

    /// The string with the real password, for the statement sent to the server only.
    pub(crate) fn with_password(&self, password: &str) -> String {
        self.render_with(Some(password))
    }

    /// Parses a libpq `key=value` string (as stored in `pg_subscription.subconninfo`); the
    /// password's value is dropped on the spot. URIs are not parsed (all fields stay unset).
    pub fn parse(text: &str) -> ConnInfo {
        let mut info = ConnInfo {
            host: None,
            port: None,
            dbname: None,
            user: None,
            has_password: false,
            other: Vec::new(),
        };
        let mut chars = text.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let mut key = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' || c.is_whitespace() {
                    break;
                }
                key.push(c);
                chars.next();
            }
            if key.is_empty() {
                break;
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() != Some(&'=') {
                break;
            }
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let mut value = String::new();
            if chars.peek() == Some(&'\'') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '\'' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    chars.next();
                    if c == '\\' {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    } else {
                        value.push(c);
                    }
                }
            }
            match key.as_str() {
                "host" | "hostaddr" if info.host.is_none() => info.host = Some(value),
                "port" => info.port = value.parse().ok(),
                "dbname" => info.dbname = Some(value),
                "user" => info.user = Some(value),
                "password" => info.has_password = true,
                _ => info.other.push((key, value)),
            }
        }
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_always_quoted() {
        assert_eq!(ident("jobs"), "\"jobs\"");
        assert_eq!(ident("user"), "\"user\"");
        assert_eq!(ident("Mixed Case"), "\"Mixed Case\"");
        assert_eq!(ident("quo\"te"), "\"quo\"\"te\"");
        assert_eq!(qualified("my schema", "t"), "\"my schema\".\"t\"");
    }

    #[test]
    fn literals_are_quoted() {
        assert_eq!(literal("abc"), "'abc'");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal("a\\b'c"), "E'a\\\\b''c'");
    }

    #[test]
    fn conninfo_round_trips_and_hides_the_password() {
        let mut c = ConnInfo::new("127.0.0.2", 5432, "fusion pbx", "rep'l");
        c.other.clear();
        let shown = c.render();
        assert_eq!(
            shown,
            "host=127.0.0.2 port=5432 dbname='fusion pbx' user='rep\\'l' password=<redacted>"
        );
        let real = c.with_password("s3 cr'et\\x");
        assert!(real.contains("password='s3 cr\\'et\\\\x'"), "{real}");
        let back = ConnInfo::parse(&real);
        assert_eq!(back.host.as_deref(), Some("127.0.0.2"));
        assert_eq!(back.port, Some(5432));
        assert_eq!(back.dbname.as_deref(), Some("fusion pbx"));
        assert_eq!(back.user.as_deref(), Some("rep'l"));
        assert!(back.has_password);
        assert!(
            !format!("{back:?}").contains("s3"),
            "the parsed value keeps no password"
        );
        assert!(!back.render().contains("s3"));
    }

    #[test]
    fn fspbx_script_conninfo_parses() {
        let c = ConnInfo::parse("host=10.0.0.1 dbname=fusionpbx user=fusionpbx password=abc");
        assert_eq!(c.host.as_deref(), Some("10.0.0.1"));
        assert_eq!(c.port, None);
        assert_eq!(c.user.as_deref(), Some("fusionpbx"));
        assert_eq!(
            c.render(),
            "host=10.0.0.1 dbname=fusionpbx user=fusionpbx password=<redacted>"
        );
    }
}
