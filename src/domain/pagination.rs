//! Limit/offset pagination with a hard maximum page size.
use super::Error;

pub const DEFAULT_LIMIT: u64 = 20;
pub const MAX_LIMIT: u64 = 100;
/// Deep offsets make the database skip rows one by one; past this, use filters instead.
pub const MAX_OFFSET: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u64,
    pub offset: u64,
}

impl PageRequest {
    /// Validates the query parameters; out-of-range values are refused, not silently clamped.
    pub fn parse(limit: Option<u64>, offset: Option<u64>) -> Result<Self, Error> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let offset = offset.unwrap_or(0);
        if offset > MAX_OFFSET {
            return Err(Error::invalid(
                "offset",
                format!("must be at most {MAX_OFFSET}"),
            ));
        }
        Ok(Self { limit, offset })
    }
}

/// One page of results; `next_offset` is set when more rows follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub limit: u64,
    pub offset: u64,
    pub next_offset: Option<u64>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says that more follow.
    pub fn from_overfetch(mut rows: Vec<T>, req: PageRequest) -> Self {
        let has_more = rows.len() as u64 > req.limit;
        rows.truncate(req.limit as usize);
        Self {
            items: rows,
            limit: req.limit,
            offset: req.offset,
            next_offset: has_more.then_some(req.offset + req.limit),
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            limit: self.limit,
            offset: self.offset,
            next_offset: self.next_offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_above_the_maximum_is_refused() {
        assert!(PageRequest::parse(Some(MAX_LIMIT + 1), None).is_err());
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert_eq!(
            PageRequest::parse(Some(MAX_LIMIT), None).unwrap().limit,
            MAX_LIMIT
        );
    }

    #[test]
    fn overfetched_row_marks_a_next_page() {
        let req = PageRequest {
            limit: 2,
            offset: 4,
        };
        let page = Page::from_overfetch(vec![1, 2, 3], req);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_offset, Some(6));
        let last = Page::from_overfetch(vec![1, 2], req);
        assert_eq!(last.next_offset, None);
    }
}
