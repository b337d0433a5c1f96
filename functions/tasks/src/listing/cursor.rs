//! List cursors: where the last page ended, signed, and bound to the sort and filters
//! they were made for, so a cursor edited by hand or reused with another query is a 400.

use serde::{Deserialize, Serialize};
use shared::http::{
    error::ApiError,
    pagination::{self, CursorSigner, Page},
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::params::{ListRequest, SortField};
use crate::task::{Priority, Task};

/// The key of the last item of a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SortKey {
    /// Creation time.
    CreatedAt(#[serde(with = "time::serde::rfc3339")] OffsetDateTime),
    /// Due date (none sorts as infinity).
    DueAt(#[serde(with = "time::serde::rfc3339::option")] Option<OffsetDateTime>),
    /// Priority.
    Priority(Priority),
    /// Title.
    Title(String),
}

impl SortKey {
    pub(super) fn of(field: SortField, task: &Task) -> Self {
        match field {
            SortField::CreatedAt => Self::CreatedAt(task.created_at),
            SortField::DueAt => Self::DueAt(task.due_at),
            SortField::Priority => Self::Priority(task.priority),
            SortField::Title => Self::Title(task.title.clone()),
        }
    }
}

/// What a cursor holds: where the last page ended, for which query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct After {
    /// The sort it was made for.
    pub s: String,
    /// The filters it was made for.
    pub f: String,
    /// The last item's key.
    pub k: SortKey,
    /// The last item's id.
    pub id: Uuid,
}

/// The position a client's cursor names, checked: signed by us, for this sort and these
/// filters.
pub fn open(
    signer: &CursorSigner,
    cursor: Option<&str>,
    request: &ListRequest,
) -> Result<Option<After>, ApiError> {
    let Some(after) = cursor.map(|c| signer.verify::<After>(c)).transpose()? else {
        return Ok(None);
    };
    let key_matches = matches!(
        (&after.k, request.sort.field),
        (SortKey::CreatedAt(_), SortField::CreatedAt)
            | (SortKey::DueAt(_), SortField::DueAt)
            | (SortKey::Priority(_), SortField::Priority)
            | (SortKey::Title(_), SortField::Title)
    );
    if after.s != request.sort.label() || after.f != request.filter.fingerprint() || !key_matches {
        return Err(ApiError::BadRequest(
            "the cursor belongs to another sort or filter; start again without it".into(),
        ));
    }
    Ok(Some(after))
}

/// Splits a `limit + 1` fetch into a page whose cursor is signed for this request.
pub fn page(signer: &CursorSigner, rows: Vec<Task>, request: &ListRequest) -> Page<Task> {
    let (label, fingerprint) = (request.sort.label(), request.filter.fingerprint());
    let field = request.sort.field;
    pagination::page_with(rows, request.size, |last| {
        signer.sign(&After {
            s: label.clone(),
            f: fingerprint.clone(),
            k: SortKey::of(field, last),
            id: last.id,
        })
    })
}
