//! Session ids and random tokens: 40 characters of `[A-Za-z0-9]` from the OS CSPRNG.

use crate::error::{Result, SessionError};

/// Length of session ids and Laravel-style tokens.
pub const ID_LENGTH: usize = 40;

const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Bytes drawn from the OS per refill of a thread's pool.
const POOL_BYTES: usize = 4096;

thread_local! {
    /// OS CSPRNG output not handed out yet, and how much of it was used. Every request drew a
    /// fresh id (and new sessions a token) with one `getrandom` syscall each, about 1 µs here; one
    /// syscall now serves about 60 of them. Bytes are erased as they are handed out, so nothing
    /// already used stays in memory.
    static POOL: std::cell::RefCell<(Box<[u8; POOL_BYTES]>, usize)> =
        std::cell::RefCell::new((Box::new([0; POOL_BYTES]), POOL_BYTES));
}

fn os_random(out: &mut [u8]) -> Result<()> {
    getrandom::fill(out)
        .map_err(|e| SessionError::Io(format!("the OS random generator failed: {e}")))
}

/// Fills `out` with random bytes from the OS CSPRNG (through a per-thread pool for small
/// requests). The OS CSPRNG failing is an I/O error, not a panic.
pub fn random_bytes(out: &mut [u8]) -> Result<()> {
    if out.len() > POOL_BYTES / 16 {
        return os_random(out);
    }
    POOL.with(|pool| {
        let mut guard = pool.borrow_mut();
        let (buf, used) = &mut *guard;
        if *used + out.len() > POOL_BYTES {
            os_random(&mut buf[..])?;
            *used = 0;
        }
        let taken = &mut buf[*used..*used + out.len()];
        out.copy_from_slice(taken);
        taken.fill(0);
        *used += out.len();
        Ok(())
    })
}

/// `len` random characters of `[A-Za-z0-9]`, unbiased (rejection sampling of bytes ≥ 248).
pub fn random_alnum(len: usize) -> Result<String> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        random_bytes(&mut buf)?;
        for &b in &buf {
            // 248 = 4 × 62: keeping only bytes below it makes every character equally likely.
            if b < 248 && out.len() < len {
                out.push(char::from(ALNUM[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

/// A fresh session id.
pub fn generate_id() -> Result<String> {
    random_alnum(ID_LENGTH)
}

/// True for exactly 40 ASCII letters and digits, the only shape a new id can have.
pub fn is_valid_id(id: &str) -> bool {
    id.len() == ID_LENGTH && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// True for the id shape of `@ostro/session` 1.x: 40 characters of base64url `[A-Za-z0-9_-]`.
pub fn is_legacy_id(id: &str) -> bool {
    id.len() == ID_LENGTH
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks that a handler may use `id` as a storage key: a valid or a legacy id, nothing else.
/// This is what keeps `../` and friends away from the file driver's paths.
pub fn check_storage_id(id: &str) -> Result<()> {
    if is_legacy_id(id) {
        Ok(())
    } else {
        Err(SessionError::InvalidId(format!(
            "invalid session id {:?}…: ids are 40 characters of [A-Za-z0-9_-]",
            crate::error::redact(id)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = generate_id().unwrap();
        let b = generate_id().unwrap();
        assert!(is_valid_id(&a) && is_valid_id(&b));
        assert_ne!(a, b);
    }

    #[test]
    fn validity_rules() {
        assert!(!is_valid_id(""));
        assert!(!is_valid_id(&"a".repeat(39)));
        assert!(!is_valid_id(&"a".repeat(41)));
        assert!(!is_valid_id(&format!("{}-", "a".repeat(39))));
        assert!(!is_valid_id(&format!("{}é", "a".repeat(38))));
        assert!(is_legacy_id(&format!("{}-_", "a".repeat(38))));
        assert!(check_storage_id("../../etc/passwd").is_err());
        assert!(check_storage_id(&format!("../{}", "a".repeat(37))).is_err());
    }

    #[test]
    fn ids_stay_distinct_across_many_pool_refills() {
        // 64 bytes per id from a 4 KB pool: 10 000 ids cross about 150 refills.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(generate_id().unwrap()));
        }
    }

    #[test]
    fn pooled_bytes_are_erased_once_handed_out_and_large_requests_bypass_the_pool() {
        let mut a = [0u8; 32];
        random_bytes(&mut a).unwrap();
        POOL.with(|p| {
            let p = p.borrow();
            assert!(p.1 >= 32);
            assert!(
                p.0[..p.1].iter().all(|&b| b == 0),
                "used bytes linger in the pool"
            );
        });
        let used = POOL.with(|p| p.borrow().1);
        let mut big = [0u8; POOL_BYTES];
        random_bytes(&mut big).unwrap();
        assert_eq!(POOL.with(|p| p.borrow().1), used);
        assert!(big.iter().any(|&b| b != 0));
    }

    #[test]
    fn random_alnum_uses_the_whole_alphabet() {
        let s = random_alnum(4000).unwrap();
        for c in ALNUM.iter() {
            assert!(s.as_bytes().contains(c), "missing {}", *c as char);
        }
    }
}
