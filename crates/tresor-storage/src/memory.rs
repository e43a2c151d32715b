//! In-memory storage, for tests.

use crate::{ErrorKind, Kind, Result, Storage, StorageError, check_name};
use std::collections::HashMap;
use std::sync::Mutex;

/// Objects in a map; nothing persists.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    objects: Mutex<HashMap<(Kind, String), Vec<u8>>>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Storage for MemoryStorage {
    fn location(&self) -> String {
        "memory:".into()
    }
    fn create(&self) -> Result<()> {
        Ok(())
    }
    fn list(&self, kind: Kind) -> Result<Vec<(String, u64)>> {
        let m = self.objects.lock().expect("lock");
        Ok(m.iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, n), v)| (n.clone(), v.len() as u64))
            .collect())
    }
    fn read(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
        check_name(kind, name)?;
        let m = self.objects.lock().expect("lock");
        m.get(&(kind, name.to_string())).cloned().ok_or_else(|| {
            StorageError::new(ErrorKind::NotFound, "read", kind, name, "no such object")
        })
    }
    fn read_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let all = self.read(kind, name)?;
        let end = offset
            .checked_add(length)
            .filter(|e| *e <= all.len() as u64);
        match end {
            Some(end) => Ok(all[offset as usize..end as usize].to_vec()),
            None => Err(StorageError::new(
                ErrorKind::ShortRead,
                "read",
                kind,
                name,
                format!("range {offset}+{length} beyond size {}", all.len()),
            )),
        }
    }
    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
        check_name(kind, name)?;
        let mut m = self.objects.lock().expect("lock");
        match m.get(&(kind, name.to_string())) {
            Some(old) if old == data => Ok(()),
            Some(_) => Err(StorageError::new(
                ErrorKind::AlreadyExists,
                "write",
                kind,
                name,
                "object exists with other content",
            )),
            None => {
                m.insert((kind, name.to_string()), data.to_vec());
                Ok(())
            }
        }
    }
    fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        check_name(kind, name)?;
        let mut m = self.objects.lock().expect("lock");
        m.remove(&(kind, name.to_string()))
            .map(|_| ())
            .ok_or_else(|| {
                StorageError::new(ErrorKind::NotFound, "delete", kind, name, "no such object")
            })
    }
    fn size(&self, kind: Kind, name: &str) -> Result<u64> {
        self.read(kind, name).map(|v| v.len() as u64)
    }
}
