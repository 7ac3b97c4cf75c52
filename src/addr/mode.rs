//! Permissions of the UNIX sockets routerd creates (uwsgi and subscription listeners), written in
//! octal as `chmod` takes them.

/// A mode that is not octal, or has bits beyond `0777`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an octal mode such as \"0660\"")]
pub struct BadSocketMode(String);

/// Parses an octal mode such as `"0660"`: permission bits only, at most `0777`.
pub fn parse_socket_mode(text: &str) -> Result<u32, BadSocketMode> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| BadSocketMode(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_permission_bits_only() {
        assert_eq!(parse_socket_mode("0660"), Ok(0o660));
        assert_eq!(parse_socket_mode("777"), Ok(0o777));
        for bad in ["", "0o660", "0888", "1777", "rw-rw----"] {
            assert_eq!(
                parse_socket_mode(bad),
                Err(BadSocketMode(bad.to_owned())),
                "{bad:?}"
            );
        }
    }
}
