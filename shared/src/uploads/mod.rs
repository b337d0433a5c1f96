//! The upload domain shared by the `uploads` function (which signs URLs) and the
//! `upload-processor` function (which checks what arrived): purposes, what each accepts,
//! statuses, object keys, and recognising a file type from its first bytes; where the
//! bucket is ([`StorageConfig`]). [`arrivals`] decides and records what happens to an
//! object that arrives; with the `presign` feature, [`presign`] signs S3 requests
//! (presigned URLs for browsers, and the few calls the functions make themselves)
//! without the S3 SDK client.

pub mod arrivals;
pub mod deletions;
#[cfg(feature = "presign")]
pub mod presign;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    config::{ConfigError, parse_or, required},
    identity::UserId,
};

/// Where an upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "upload_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum UploadStatus {
    /// Waiting for the file (or for its check).
    Pending,
    /// Checked and downloadable.
    Ready,
    /// The file did not match what was declared; it was deleted.
    Rejected,
    /// Nothing arrived before the URL expired.
    Expired,
}

/// What an upload is for; decides the accepted types and the size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "upload_purpose", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// A user's picture; becomes their avatar when ready.
    Avatar,
    /// A picture for an event.
    EventImage,
    /// A document attached to something.
    Attachment,
}

const MIB: i64 = 1024 * 1024;

/// Image types browsers display everywhere.
const IMAGES: &[&str] = &["image/jpeg", "image/png", "image/webp"];

/// Documents accepted as attachments.
const DOCUMENTS: &[&str] = &[
    "application/pdf",
    "image/jpeg",
    "image/png",
    "image/webp",
    "text/plain",
    "text/csv",
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
];

impl Purpose {
    /// Every purpose.
    pub const ALL: [Purpose; 3] = [Self::Avatar, Self::EventImage, Self::Attachment];

    /// The content types accepted for this purpose.
    pub fn allowed_types(self) -> &'static [&'static str] {
        match self {
            Self::Avatar | Self::EventImage => IMAGES,
            Self::Attachment => DOCUMENTS,
        }
    }

    /// The largest accepted object, in bytes.
    pub fn max_size(self) -> i64 {
        match self {
            Self::Avatar | Self::EventImage => 5 * MIB,
            Self::Attachment => 25 * MIB,
        }
    }

    /// The key prefix of this purpose's objects.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Avatar => "avatar",
            Self::EventImage => "event_image",
            Self::Attachment => "attachment",
        }
    }
}

/// The object key of a new upload: `<purpose>/<user id>/<uuid>`. Nothing of the client's
/// file name goes into it.
pub fn object_key(purpose: Purpose, owner: UserId, id: Uuid) -> String {
    format!("{}/{}/{}", purpose.prefix(), owner, id)
}

/// Decodes an object key as S3 event notifications encode it: URL-encoded, with spaces
/// as `+`. Returns `None` for bytes that are not UTF-8.
pub fn decode_event_key(raw: &str) -> Option<String> {
    let plus_as_space = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Whether `head` (the first bytes of an object) looks like `content_type`.
///
/// Binary formats must start with their signature; text formats must be valid UTF-8 with
/// no NUL byte in what was read; Office files are ZIP containers.
pub fn sniff_matches(content_type: &str, head: &[u8]) -> bool {
    match content_type {
        "image/png" => head.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => head.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/webp" => head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP",
        "application/pdf" => head.starts_with(b"%PDF-"),
        "application/zip"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
            head.starts_with(b"PK\x03\x04")
        }
        "text/plain" | "text/csv" => !head.contains(&0) && utf8_prefix(head),
        _ => false,
    }
}

/// Valid UTF-8, allowing a multi-byte character cut off at the end of what was read.
fn utf8_prefix(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && bytes.len() - e.valid_up_to() < 4,
    }
}

/// How many leading bytes [`sniff_matches`] wants to see.
pub const SNIFF_BYTES: i64 = 512;

/// Where uploads live and how long signed URLs last.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The uploads bucket.
    pub bucket: String,
    /// Lifetime of a presigned upload URL (at most 15 minutes).
    pub upload_url_ttl: Duration,
    /// Lifetime of a presigned download URL.
    pub download_url_ttl: Duration,
    /// Address the bucket path-style (`host/bucket/key`), as local emulators need.
    pub force_path_style: bool,
}

impl StorageConfig {
    /// Loads `UPLOADS_BUCKET`, `UPLOAD_URL_TTL_SECONDS` (default 600, at most 900),
    /// `DOWNLOAD_URL_TTL_SECONDS` (default 300) and `S3_FORCE_PATH_STYLE` (default false).
    pub fn from_env() -> Result<Self, ConfigError> {
        let upload: u64 = parse_or("UPLOAD_URL_TTL_SECONDS", 600)?;
        if !(1..=900).contains(&upload) {
            return Err(ConfigError::Invalid {
                name: "UPLOAD_URL_TTL_SECONDS",
                reason: "must be between 1 and 900".into(),
            });
        }
        let download: u64 = parse_or("DOWNLOAD_URL_TTL_SECONDS", 300)?;
        if !(1..=3600).contains(&download) {
            return Err(ConfigError::Invalid {
                name: "DOWNLOAD_URL_TTL_SECONDS",
                reason: "must be between 1 and 3600".into(),
            });
        }
        Ok(Self {
            bucket: required("UPLOADS_BUCKET")?,
            upload_url_ttl: Duration::from_secs(upload),
            download_url_ttl: Duration::from_secs(download),
            force_path_style: parse_or("S3_FORCE_PATH_STYLE", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_generated_from_ids_only() {
        let owner = UserId(Uuid::nil());
        let id = Uuid::max();
        assert_eq!(
            object_key(Purpose::Avatar, owner, id),
            "avatar/00000000-0000-0000-0000-000000000000/ffffffff-ffff-ffff-ffff-ffffffffffff"
        );
    }

    #[test]
    fn event_keys_decode_spaces_and_unicode() {
        assert_eq!(
            decode_event_key("some+dir/na%C3%AFve+file%2B1.png").unwrap(),
            "some dir/naïve file+1.png"
        );
        assert_eq!(decode_event_key("plain/key").unwrap(), "plain/key");
        assert_eq!(decode_event_key("%E2%9C%93+ok").unwrap(), "✓ ok");
        assert!(decode_event_key("%FF%FE").is_none());
    }

    #[test]
    fn sniffing_checks_signatures() {
        assert!(sniff_matches("image/png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
        assert!(!sniff_matches("image/png", b"hello, I am text"));
        assert!(sniff_matches("image/jpeg", &[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(sniff_matches("image/webp", b"RIFF\x10\0\0\0WEBPVP8 "));
        assert!(!sniff_matches("image/webp", b"RIFF\x10\0\0\0AVI LIST"));
        assert!(sniff_matches("application/pdf", b"%PDF-1.7\n"));
        assert!(sniff_matches("text/plain", "héllo".as_bytes()));
        assert!(
            sniff_matches("text/plain", &"é".as_bytes()[..1]),
            "a cut multi-byte char is fine"
        );
        assert!(!sniff_matches("text/plain", b"MZ\x90\0\x03\0"));
        assert!(!sniff_matches("application/x-msdownload", b"MZ"));
    }

    #[test]
    fn limits_per_purpose() {
        assert_eq!(Purpose::Avatar.max_size(), 5 * 1024 * 1024);
        assert_eq!(Purpose::Attachment.max_size(), 25 * 1024 * 1024);
        assert!(!Purpose::Avatar.allowed_types().contains(&"application/pdf"));
        assert!(
            Purpose::Attachment
                .allowed_types()
                .contains(&"application/pdf")
        );
    }
}
