//! One page type for every list.
use poem_openapi::{
    Object,
    types::{ParseFromJSON, ToJSON},
};

use super::json_reply::{WriteJson, write};
use crate::domain;

/// A page of results. `next_offset` is absent on the last page.
#[derive(Object, serde::Serialize)]
pub struct Page<T: ParseFromJSON + ToJSON> {
    pub items: Vec<T>,
    pub limit: u64,
    pub offset: u64,
    /// The `offset` of the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
}

impl<T: ParseFromJSON + ToJSON> Page<T> {
    /// The API view of a domain page, each row mapped by `From`.
    pub fn from_domain<M>(page: domain::Page<M>) -> Self
    where
        T: From<M>,
    {
        Self {
            items: page.items.into_iter().map(T::from).collect(),
            limit: page.limit,
            offset: page.offset,
            next_offset: page.next_offset,
        }
    }
}

impl<T: ParseFromJSON + ToJSON + WriteJson> WriteJson for Page<T> {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), sonic_rs::Error> {
        write::raw(out, "{\"items\":[");
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                write::raw(out, ",");
            }
            item.write_json(out)?;
        }
        write::raw(out, "],\"limit\":");
        write::int(out, self.limit);
        write::raw(out, ",\"offset\":");
        write::int(out, self.offset);
        if let Some(next) = self.next_offset {
            write::raw(out, ",\"next_offset\":");
            write::int(out, next);
        }
        write::raw(out, "}");
        Ok(())
    }
}
