//! The data file: an append-only log of batches, replayed at start-up.
//!
//! A batch is `u32 length` (little-endian) then its operations; a batch is
//! one `write`, and replay drops a torn last batch, so a transaction is on
//! disk all or nothing. Operations: `1` set (key, version, expiry, content
//! type, data), `2` delete (key), `3` version counter. The same bytes are
//! read with `std::fs` in gRPC mode and through a granted WASI directory in
//! WASM mode, so the data moves with the component.

use std::collections::HashMap;

/// One stored value.
#[derive(Debug, Clone)]
pub struct Entry {
    pub data: Vec<u8>,
    pub version: u64,
    pub content_type: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub expires_at: Option<i64>,
}

/// One change: `None` deletes.
pub type Change = (String, Option<Entry>);

const SET: u8 = 1;
const DELETE: u8 = 2;
const VERSION: u8 = 3;
const NONE: u32 = u32::MAX;

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Encodes one batch: the version counter, then the changes.
pub fn batch(version: u64, changes: &[Change]) -> Vec<u8> {
    let mut ops = vec![VERSION];
    ops.extend_from_slice(&version.to_le_bytes());
    for (key, entry) in changes {
        match entry {
            Some(entry) => {
                ops.push(SET);
                put_bytes(&mut ops, key.as_bytes());
                ops.extend_from_slice(&entry.version.to_le_bytes());
                ops.extend_from_slice(&entry.expires_at.unwrap_or(i64::MIN).to_le_bytes());
                match &entry.content_type {
                    Some(ct) => put_bytes(&mut ops, ct.as_bytes()),
                    None => ops.extend_from_slice(&NONE.to_le_bytes()),
                }
                put_bytes(&mut ops, &entry.data);
            }
            None => {
                ops.push(DELETE);
                put_bytes(&mut ops, key.as_bytes());
            }
        }
    }
    let mut framed = (ops.len() as u32).to_le_bytes().to_vec();
    framed.extend_from_slice(&ops);
    framed
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        self.take(n).map(<[u8]>::to_vec)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?).ok()
    }
}

/// What replay found: the entries, the highest version, and how many bytes
/// of the file are whole batches (the rest is a torn write to cut off).
pub struct Replayed {
    pub entries: HashMap<String, Entry>,
    pub version: u64,
    pub good_len: usize,
    pub batches: usize,
}

/// Replays a log.
pub fn replay(bytes: &[u8]) -> Replayed {
    let mut replayed = Replayed { entries: HashMap::new(), version: 0, good_len: 0, batches: 0 };
    let mut file = Reader(bytes);
    while let Some(len) = file.u32() {
        let Some(ops) = file.take(len as usize) else { break };
        let Some(changes) = decode_batch(ops, &mut replayed.version) else { break };
        for (key, entry) in changes {
            match entry {
                Some(entry) => replayed.entries.insert(key, entry),
                None => replayed.entries.remove(&key),
            };
        }
        replayed.good_len = bytes.len() - file.0.len();
        replayed.batches += 1;
    }
    replayed
}

fn decode_batch(ops: &[u8], version: &mut u64) -> Option<Vec<Change>> {
    let mut ops = Reader(ops);
    let mut changes = Vec::new();
    while let Some(tag) = ops.u8() {
        match tag {
            VERSION => *version = (*version).max(ops.u64()?),
            SET => {
                let key = ops.string()?;
                let entry_version = ops.u64()?;
                let expires_at = Some(ops.u64()? as i64).filter(|at| *at != i64::MIN);
                let content_type = match ops.u32()? {
                    NONE => None,
                    n => Some(String::from_utf8(ops.take(n as usize)?.to_vec()).ok()?),
                };
                let data = ops.bytes()?;
                *version = (*version).max(entry_version);
                changes.push((key, Some(Entry { data, version: entry_version, content_type, expires_at })));
            }
            DELETE => changes.push((ops.string()?, None)),
            _ => return None,
        }
    }
    Some(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_torn_tail() {
        let entry =
            Entry { data: b"v".to_vec(), version: 7, content_type: Some("text/plain".into()), expires_at: None };
        let mut log = batch(7, &[("a".into(), Some(entry)), ("b".into(), None)]);
        let whole = log.len();
        let torn = batch(8, &[("c".into(), None)]);
        log.extend_from_slice(&torn[..torn.len() - 1]);
        let replayed = replay(&log);
        assert_eq!(replayed.good_len, whole);
        assert_eq!(replayed.version, 7);
        assert_eq!(replayed.entries["a"].data, b"v");
        assert_eq!(replayed.entries["a"].content_type.as_deref(), Some("text/plain"));
    }
}
