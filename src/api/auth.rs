//! The optional API token (protocol spec B1): when set, every call must carry
//! it in the `dapr-api-token` header (gRPC metadata or HTTP header), except
//! the HTTP health routes. Compared in constant time.

use std::sync::Arc;

/// The header (and gRPC metadata key) carrying the token.
pub const TOKEN_HEADER: &str = "dapr-api-token";

/// The token a server expects, if any. Cheap to clone.
#[derive(Clone, Default)]
pub struct Token(Option<Arc<[u8]>>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Token(set)" } else { "Token(none)" })
    }
}

impl Token {
    /// Expects `token`; an empty or absent one means no check.
    pub fn new(token: Option<&str>) -> Self {
        Self(token.filter(|t| !t.is_empty()).map(|t| Arc::from(t.as_bytes())))
    }

    /// Whether a token is required.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Whether a request carrying `presented` (the header's bytes, if any)
    /// may pass.
    pub fn admits(&self, presented: Option<&[u8]>) -> bool {
        match (&self.0, presented) {
            (None, _) => true,
            (Some(expected), Some(presented)) => constant_time_eq(expected, presented),
            (Some(_), None) => false,
        }
    }
}

/// `a == b`, in a time that depends only on the lengths, not on where the
/// first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the compiler from turning the fold into an early exit.
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_whole_values() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn admits() {
        let none = Token::new(None);
        assert!(none.admits(None) && none.admits(Some(b"x")));
        assert!(!Token::new(Some("")).is_set());
        let token = Token::new(Some("t0ken"));
        assert!(token.admits(Some(b"t0ken")));
        assert!(!token.admits(Some(b"wrong")));
        assert!(!token.admits(None));
        assert_eq!(format!("{token:?}"), "Token(set)");
    }
}
