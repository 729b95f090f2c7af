//! serde payloads ⇄ the core's wire JSON. `()` means "no data" (the field is omitted,
//! like JavaScript's `undefined`); integers beyond ±2^53 are refused.

use crate::error::Error;
use link_sansio::wire::{self, Value};
use serde::{Serialize, de::DeserializeOwned};
use std::any::TypeId;

/// Encode `v` for the wire; `()` encodes to `None` (omitted).
pub fn encode<T: Serialize + ?Sized + 'static>(v: &T) -> Result<Option<Value>, Error> {
    if TypeId::of::<T>() == TypeId::of::<()>() {
        return Ok(None);
    }
    wire::to_value(v)
        .map(Some)
        .map_err(|e| Error::Encode(e.to_string()))
}

/// Decode wire data into `T`; absent data decodes as JSON `null` (so `()`,
/// `Option<_>` and `serde_json::Value` accept it).
pub fn decode<T: DeserializeOwned>(v: Option<&Value>) -> Result<T, Error> {
    wire::from_value(v).map_err(|e| Error::Decode(e.to_string()))
}
