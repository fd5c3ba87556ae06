//! Splitting `syncthing.url` into what an SSH forward needs.

/// `http://host:port/prefix` taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiUrl {
    /// `http` or `https`.
    pub(crate) scheme: String,
    /// Host as the node resolves it (brackets removed from IPv6).
    pub(crate) host: String,
    /// Port (default 80/443).
    pub(crate) port: u16,
    /// Path prefix, `/` when none.
    pub(crate) path: String,
}

impl ApiUrl {
    /// Parses `url`; the error says what is wrong.
    pub(crate) fn parse(url: &str) -> Result<ApiUrl, String> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("no scheme (http:// or https://)")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(format!("scheme {scheme:?} is not http or https")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err("credentials in the URL are not allowed; use api_key".into());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or("unclosed [ in the host")?;
            let port = match after.strip_prefix(':') {
                Some(p) => p
                    .parse()
                    .map_err(|_| format!("port {p:?} is not a number"))?,
                None if after.is_empty() => default_port,
                None => return Err(format!("unexpected {after:?} after the host")),
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_owned(),
                    p.parse()
                        .map_err(|_| format!("port {p:?} is not a number"))?,
                ),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err("no host".into());
        }
        if port == 0 {
            return Err("port 0".into());
        }
        Ok(ApiUrl {
            scheme,
            host,
            port,
            path: path.to_owned(),
        })
    }

    /// The same API at the local end of a forward.
    pub(crate) fn at_local(&self, local: std::net::SocketAddr) -> String {
        format!("{}://{}{}", self.scheme, local, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_fs_pbx_uses_and_rejects_the_rest() {
        let u = ApiUrl::parse("http://127.0.0.1:8384").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8384, "/")
        );
        let u = ApiUrl::parse("https://[::1]/st/").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.host.as_str(), u.port, u.path.as_str()),
            ("https", "::1", 443, "/st/")
        );
        assert_eq!(
            u.at_local("127.0.0.1:4000".parse().unwrap()),
            "https://127.0.0.1:4000/st/"
        );
        for bad in [
            "127.0.0.1:8384",
            "ftp://x",
            "http://:1",
            "http://h:x",
            "http://u:p@h:1",
        ] {
            assert!(ApiUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
