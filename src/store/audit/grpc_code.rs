//! How an audit row spells the gRPC code that answered its call (`audit_log.grpc_code`), by a table of our own.
//!
//! The spelling is hashed into the chain ([`super::chain`]), so it must never change under a row: it cannot be
//! whatever tonic's `Debug` prints this year. The table freezes the spellings every row has carried so far (they
//! were tonic's `Debug` names: `Ok`, `NotFound`, `PermissionDenied`, …), so rows already written and rows written
//! from now on encode alike, and a tonic upgrade cannot silently change what new rows hash.

use tonic::Code;

/// Every gRPC code with its stored spelling, in the order of the codes' numbers (0 to 16).
const SPELLINGS: [(Code, &str); 17] = [
    (Code::Ok, "Ok"),
    (Code::Cancelled, "Cancelled"),
    (Code::Unknown, "Unknown"),
    (Code::InvalidArgument, "InvalidArgument"),
    (Code::DeadlineExceeded, "DeadlineExceeded"),
    (Code::NotFound, "NotFound"),
    (Code::AlreadyExists, "AlreadyExists"),
    (Code::PermissionDenied, "PermissionDenied"),
    (Code::ResourceExhausted, "ResourceExhausted"),
    (Code::FailedPrecondition, "FailedPrecondition"),
    (Code::Aborted, "Aborted"),
    (Code::OutOfRange, "OutOfRange"),
    (Code::Unimplemented, "Unimplemented"),
    (Code::Internal, "Internal"),
    (Code::Unavailable, "Unavailable"),
    (Code::DataLoss, "DataLoss"),
    (Code::Unauthenticated, "Unauthenticated"),
];

/// The text an audit row stores for `code`.
pub fn stored_name(code: Code) -> &'static str {
    SPELLINGS[code as usize].1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each of the 17 codes has its own spelling, and reading the spelling back gives the code.
    #[test]
    fn every_code_round_trips_through_its_spelling() {
        for number in 0..17 {
            let code = Code::from_i32(number);
            assert_eq!(code as i32, number, "{number} is a gRPC code");
            let back: Vec<Code> =
                SPELLINGS.iter().filter(|(_, name)| *name == stored_name(code)).map(|s| s.0).collect();
            assert_eq!(back, [code]);
        }
    }

    /// Rows written before this table spelled the code with tonic's `Debug`; with the tonic that wrote them, the
    /// table says the same, so those rows and new ones hash alike. (Should a tonic upgrade change its `Debug`, this
    /// fails while the table, and every hash, stays as it was: then drop this test, not the table.)
    #[test]
    fn the_table_spells_as_the_rows_already_written() {
        for (code, name) in SPELLINGS {
            assert_eq!(format!("{code:?}"), name);
        }
    }
}
