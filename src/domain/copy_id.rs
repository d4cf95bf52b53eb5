//! A copy's identifier, and a rollout's: UUIDv7s, so ids sort by creation time and index well.

uuid_newtype!(CopyId, "a copy id");
uuid_newtype!(RolloutId, "a rollout id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_prints() {
        let id = CopyId::new();
        assert_eq!(CopyId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn refuses_what_is_not_a_uuid() {
        assert!(CopyId::parse("").is_err());
        assert!(CopyId::parse("copy-1").is_err());
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let first = CopyId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(CopyId::new() > first);
    }
}
