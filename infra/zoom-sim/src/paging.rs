//! Zoom's `page_size` / `next_page_token` paging for every list but recordings (which keeps
//! its own date-window cursor). A token continues the list it came from, for the user it was
//! given to, for 15 minutes on the simulator's clock; after that (or for a token that was
//! never issued) the answer is Zoom's 400 code 300 "The next page token is invalid or expired.".

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;

use crate::recordings;
use crate::rest::query_value;
use crate::state::{Inner, PageToken};
use crate::util::{random_secret, zoom_error};

/// `next_page_token`s expire after 15 minutes, like Zoom's.
pub(crate) const PAGE_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

pub(crate) fn bad_page_token() -> Response {
    zoom_error(
        StatusCode::BAD_REQUEST,
        300,
        "The next page token is invalid or expired.",
    )
}

/// One page of a list.
pub(crate) struct Page {
    /// Keys of this page's items, in order (items gone since the first page are left out).
    pub keys: Vec<String>,
    pub page_size: usize,
    pub total_records: usize,
    /// Empty on the last page.
    pub next_page_token: String,
}

impl Page {
    pub fn page_count(&self) -> usize {
        self.total_records.div_ceil(self.page_size.max(1))
    }
}

/// The page a request asks for. Without `next_page_token`, `all_keys` is the whole list in
/// order; with one, the list as it was when the first page was asked for. `page_size` may
/// change from page to page (default 30, at most 300).
pub(crate) fn page(
    inner: &mut Inner,
    owner: &str,
    list: &str,
    pairs: &[(String, String)],
    all_keys: impl FnOnce(&Inner) -> Vec<String>,
) -> Result<Page, Response> {
    let now = inner.now();
    inner.pages.retain(|_, t| t.expires_at > now);
    let asked_size = query_value(pairs, "page_size").map(|raw| recordings::page_size(Some(raw)));
    let (keys, offset, page_size) = match query_value(pairs, "next_page_token") {
        Some(token) => match inner.pages.get(token) {
            Some(t) if t.owner == owner && t.list == list => {
                (t.keys.clone(), t.offset, asked_size.unwrap_or(t.page_size))
            }
            _ => return Err(bad_page_token()),
        },
        None => (
            all_keys(inner),
            0,
            asked_size.unwrap_or(recordings::DEFAULT_PAGE_SIZE),
        ),
    };
    let total_records = keys.len();
    let end = (offset + page_size).min(total_records);
    let page_keys = keys.get(offset..end).unwrap_or_default().to_vec();
    let next_page_token = if end < total_records {
        let token = random_secret();
        inner.pages.insert(
            token.clone(),
            PageToken {
                owner: owner.to_owned(),
                list: list.to_owned(),
                keys,
                offset: end,
                page_size,
                expires_at: now + PAGE_TOKEN_TTL,
            },
        );
        token
    } else {
        String::new()
    };
    Ok(Page {
        keys: page_keys,
        page_size,
        total_records,
        next_page_token,
    })
}
