//! `NextToken` pagination over newest-first listings.
//!
//! A token names the last item of the page it ends (its creation time and a tie-breaking sequence number), not an
//! offset, so a copy created between two pages neither repeats nor hides an item of the listing being walked.
//! Tokens are opaque to clients (hex) and carry which listing they belong to; anything else is refused with
//! `InvalidPaginationTokenException`, as AWS does.

use super::error::{ApiError, ErrorCode};

/// Where an item sits in a newest-first listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PageKey {
    pub created_millis: i64,
    pub seq: u64,
}

/// Which listing a token continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Projects,
    ProjectVersions,
}

impl Listing {
    fn tag(self) -> &'static str {
        match self {
            Listing::Projects => "projects",
            Listing::ProjectVersions => "versions",
        }
    }
}

pub fn encode_token(listing: Listing, key: PageKey) -> String {
    let plain = format!("{}:{}:{}", listing.tag(), key.created_millis, key.seq);
    plain.bytes().map(|b| format!("{b:02x}")).collect()
}

pub fn decode_token(listing: Listing, token: &str) -> Result<PageKey, ApiError> {
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidPaginationToken,
            format!("Invalid pagination token: {token}"),
        )
    };
    if token.len() % 2 != 0 || !token.is_ascii() {
        return Err(invalid());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| invalid())?;
    let plain = String::from_utf8(bytes).map_err(|_| invalid())?;
    match plain.split(':').collect::<Vec<_>>().as_slice() {
        [tag, millis, seq] if *tag == listing.tag() => Ok(PageKey {
            created_millis: millis.parse().map_err(|_| invalid())?,
            seq: seq.parse().map_err(|_| invalid())?,
        }),
        _ => Err(invalid()),
    }
}

/// One page of `items`, newest first, starting after `after`; and the key to continue from when more remain.
pub fn newest_first<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> PageKey,
    after: Option<PageKey>,
    max_results: usize,
) -> (Vec<T>, Option<PageKey>) {
    items.sort_by_key(|item| std::cmp::Reverse(key(item)));
    let mut remaining: Vec<T> = match after {
        Some(after) => items.into_iter().filter(|item| key(item) < after).collect(),
        None => items,
    };
    if remaining.len() <= max_results {
        return (remaining, None);
    }
    remaining.truncate(max_results);
    let next = remaining.last().map(&key);
    (remaining, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(millis: i64, seq: u64) -> PageKey {
        PageKey {
            created_millis: millis,
            seq,
        }
    }

    #[test]
    fn tokens_round_trip() {
        let token = encode_token(Listing::ProjectVersions, key(1_700_000_000_000, 42));
        assert_eq!(
            decode_token(Listing::ProjectVersions, &token).unwrap(),
            key(1_700_000_000_000, 42)
        );
    }

    #[test]
    fn token_of_another_listing_is_refused() {
        let token = encode_token(Listing::Projects, key(1, 1));
        let err = decode_token(Listing::ProjectVersions, &token).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidPaginationToken);
    }

    #[test]
    fn garbage_token_is_refused() {
        for token in ["zz", "abc", "", "6e6f"] {
            assert!(decode_token(Listing::Projects, token).is_err(), "{token}");
        }
    }

    #[test]
    fn pages_walk_every_item_once_newest_first() {
        let items = vec![key(1, 1), key(3, 3), key(2, 2), key(2, 4), key(5, 5)];
        let mut seen = Vec::new();
        let mut after = None;
        for _ in 0..10 {
            let (page, next) = newest_first(items.clone(), |k| *k, after, 2);
            assert!(page.len() <= 2);
            seen.extend(page);
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(
            seen,
            vec![key(5, 5), key(3, 3), key(2, 4), key(2, 2), key(1, 1)]
        );
    }

    #[test]
    fn exact_fit_has_no_next_page() {
        let (page, next) = newest_first(vec![key(1, 1), key(2, 2)], |k| *k, None, 2);
        assert_eq!(page.len(), 2);
        assert_eq!(next, None);
    }

    #[test]
    fn new_items_do_not_shift_later_pages() {
        let (_, next) = newest_first(vec![key(3, 3), key(2, 2), key(1, 1)], |k| *k, None, 1);
        let with_new = vec![key(9, 9), key(3, 3), key(2, 2), key(1, 1)];
        let (page, _) = newest_first(with_new, |k| *k, next, 1);
        assert_eq!(page, vec![key(2, 2)]);
    }
}
