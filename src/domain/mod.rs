//! The request vocabulary of the service, as types that cannot hold an invalid value.
//!
//! "Parse, don't validate": every type here is built only through a checked constructor (`parse`), so code that
//! holds a [`ProjectArn`] or a [`CopyRequest`] never checks it again. The rules are those of Rekognition's
//! `CopyProjectVersion` (botocore's model, `rekognition-2016-06-27`) plus the few cross-field rules AWS documents;
//! lengths count Unicode characters, as AWS does. Refusing a request here costs nothing, whereas the same mistake
//! found by Rekognition would cost a queue slot, a rate-limit token and a failed copy.

/// Implements the plumbing every string newtype shares: `as_str`, `Display`, `AsRef<str>`, `FromStr`,
/// `TryFrom<String>`, `From<Self> for String`, and serde as the plain string (deserializing goes through `parse`,
/// so even a value read from a file is checked).
/// A UUIDv7 identifier: `new`, `parse` (naming `$what` when it refuses), `as_uuid`, `Default`, `From<Uuid>`,
/// `FromStr`, `Display`.
macro_rules! uuid_newtype {
    ($name:ident, $what:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(::uuid::Uuid);

        impl $name {
            pub fn new() -> Self {
                $name(::uuid::Uuid::now_v7())
            }

            pub fn parse(s: &str) -> Result<Self, $crate::domain::DomainError> {
                ::uuid::Uuid::parse_str(s).map($name).map_err(|_| {
                    $crate::domain::DomainError(concat!("must be ", $what, " (a UUID such as 0193c1a2-…)").into())
                })
            }

            pub fn as_uuid(&self) -> ::uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<::uuid::Uuid> for $name {
            fn from(id: ::uuid::Uuid) -> Self {
                $name(id)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

macro_rules! string_newtype {
    ($name:ident, $field:tt) => {
        impl $name {
            /// The value as the caller wrote it.
            pub fn as_str(&self) -> &str {
                &self.$field
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl ::std::convert::TryFrom<String> for $name {
            type Error = $crate::domain::DomainError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl ::std::convert::From<$name> for String {
            fn from(value: $name) -> String {
                value.$field
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(raw).map_err(::serde::de::Error::custom)
            }
        }
    };
}

mod account_id;
mod arn;
mod copy_filter;
mod copy_id;
mod copy_request;
mod copy_state;
mod delete_after;
mod error;
mod idempotency_token;
mod kms_key_id;
mod output_config;
mod rollout_request;
mod tags;
mod version_name;

pub use account_id::AccountId;
pub use arn::{ProjectArn, ProjectVersionArn, Region};
pub use copy_filter::CopyFilter;
pub use copy_id::{CopyId, RolloutId};
pub use copy_request::{CopyRequest, RawCopyRequest, RawOutputConfig};
pub use copy_state::{CopyState, IllegalTransition};
pub use delete_after::DeleteAfter;
pub use error::{DomainError, FieldViolation};
pub use idempotency_token::IdempotencyToken;
pub use kms_key_id::KmsKeyId;
pub use output_config::{OutputConfig, S3Bucket, S3KeyPrefix};
pub use rollout_request::{RawRolloutDefaults, RawRolloutDestination, RawRolloutRequest, RolloutRequest};
pub use tags::{TagKey, TagValue, Tags};
pub use version_name::VersionName;

/// Rekognition's status of a model version (`COPYING_IN_PROGRESS`, `COPYING_COMPLETED`, …) as the SDK models it:
/// every status AWS documents, plus an `Unknown` arm that carries a status added after this build instead of
/// refusing it. Compared as a value, never as a string.
pub use aws_sdk_rekognition::types::ProjectVersionStatus;
