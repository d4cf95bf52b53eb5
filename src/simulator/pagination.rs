//! `NextToken` pagination over ordered listings.
//!
//! A token names the last item of the page it ends (for newest-first listings its creation time and a
//! tie-breaking sequence number; for policies, their name), not an offset, so an item created between two pages
//! neither repeats nor hides an item of the listing being walked. Tokens are opaque to clients (hex) and carry which
//! listing they belong to; anything else is refused with `InvalidPaginationTokenException`, as AWS does.

use super::error::{ApiError, ErrorCode};

/// Where an item sits in a newest-first listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageKey {
    pub created_millis: i64,
    pub seq: u64,
}

/// Which listing a token continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Projects,
    ProjectVersions,
    ProjectPolicies,
}

impl Listing {
    fn tag(self) -> &'static str {
        match self {
            Listing::Projects => "projects",
            Listing::ProjectVersions => "versions",
            Listing::ProjectPolicies => "policies",
        }
    }
}

pub fn encode_token(listing: Listing, key: PageKey) -> String {
    encode_text(listing, &format!("{}:{}", key.created_millis, key.seq))
}

pub fn decode_token(listing: Listing, token: &str) -> Result<PageKey, ApiError> {
    let text = decode_text(listing, token)?;
    let invalid = || invalid_token(token);
    let (millis, seq) = text.split_once(':').ok_or_else(invalid)?;
    Ok(PageKey { created_millis: millis.parse().map_err(|_| invalid())?, seq: seq.parse().map_err(|_| invalid())? })
}

/// A token for a listing in name order: the last name of the page.
pub fn encode_name_token(listing: Listing, name: &str) -> String {
    encode_text(listing, name)
}

pub fn decode_name_token(listing: Listing, token: &str) -> Result<String, ApiError> {
    decode_text(listing, token)
}

fn encode_text(listing: Listing, text: &str) -> String {
    hex::encode(format!("{}:{text}", listing.tag()))
}

fn decode_text(listing: Listing, token: &str) -> Result<String, ApiError> {
    let bytes = hex::decode(token).map_err(|_| invalid_token(token))?;
    let plain = String::from_utf8(bytes).map_err(|_| invalid_token(token))?;
    match plain.split_once(':') {
        Some((tag, text)) if tag == listing.tag() => Ok(text.to_owned()),
        _ => Err(invalid_token(token)),
    }
}

fn invalid_token(token: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidPaginationToken, format!("Invalid pagination token: {token}"))
}

/// The first `max_results` of `items` (already in listing order, after the previous page), and the key to continue
/// from when more remain. Reads at most one item past the page.
pub fn take_page<T, K>(
    items: impl Iterator<Item = T>,
    key: impl Fn(&T) -> K,
    max_results: usize,
) -> (Vec<T>, Option<K>) {
    let mut page: Vec<T> = items.take(max_results + 1).collect();
    if page.len() <= max_results {
        return (page, None);
    }
    page.truncate(max_results);
    let next = page.last().map(&key);
    (page, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(millis: i64, seq: u64) -> PageKey {
        PageKey { created_millis: millis, seq }
    }

    #[test]
    fn tokens_round_trip() {
        let token = encode_token(Listing::ProjectVersions, key(1_700_000_000_000, 42));
        assert_eq!(decode_token(Listing::ProjectVersions, &token).unwrap(), key(1_700_000_000_000, 42));
        let token = encode_name_token(Listing::ProjectPolicies, "allow-b");
        assert_eq!(decode_name_token(Listing::ProjectPolicies, &token).unwrap(), "allow-b");
    }

    #[test]
    fn token_of_another_listing_is_refused() {
        let token = encode_token(Listing::Projects, key(1, 1));
        let err = decode_token(Listing::ProjectVersions, &token).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidPaginationToken);
        assert!(decode_name_token(Listing::ProjectPolicies, &token).is_err());
    }

    #[test]
    fn garbage_token_is_refused() {
        for token in ["zz", "abc", "", "6e6f", "not-a-token"] {
            assert!(decode_token(Listing::Projects, token).is_err(), "{token}");
        }
    }

    #[test]
    fn pages_stop_when_nothing_remains() {
        let (page, next) = take_page([3, 2, 1].into_iter(), |n| *n, 2);
        assert_eq!((page, next), (vec![3, 2], Some(2)));
        let (page, next) = take_page([1].into_iter(), |n| *n, 1);
        assert_eq!((page, next), (vec![1], None));
        let (page, next) = take_page(std::iter::empty::<i32>(), |n| *n, 1);
        assert_eq!((page, next), (vec![], None));
    }
}
