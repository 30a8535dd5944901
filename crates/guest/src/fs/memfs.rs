//! A tiny in-memory [`FileSystem`] for unit tests of the resolver and the OS recipes.
//! Integration tests use real images instead.

use std::collections::BTreeMap;

use super::{DirEntry, FileSystem, FsError, NodeInfo, NodeKind};

enum Node {
    Dir,
    File(Vec<u8>),
    Link(Vec<u8>),
}

/// Paths (absolute, symlink-free) to nodes; parents are created on insert.
#[derive(Default)]
pub struct MemFs {
    nodes: BTreeMap<Vec<u8>, Node>,
}

impl MemFs {
    fn parents(&mut self, path: &str) {
        let mut p = String::new();
        for c in path.split('/').filter(|c| !c.is_empty()) {
            if !p.is_empty() || path.starts_with('/') {
                self.nodes
                    .entry(p.clone().into_bytes())
                    .or_insert(Node::Dir);
            }
            p.push('/');
            p.push_str(c);
        }
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.parents(path);
        self.nodes.insert(path.as_bytes().to_vec(), Node::Dir);
        self
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.parents(path);
        self.nodes
            .insert(path.as_bytes().to_vec(), Node::File(data.to_vec()));
        self
    }

    /// Adds a symlink to `target`.
    pub fn link(&mut self, path: &str, target: &str) -> &mut Self {
        self.parents(path);
        self.nodes.insert(
            path.as_bytes().to_vec(),
            Node::Link(target.as_bytes().to_vec()),
        );
        self
    }

    fn get(&self, path: &[u8]) -> Option<&Node> {
        if path == b"/" {
            return Some(&Node::Dir);
        }
        self.nodes.get(path)
    }
}

impl FileSystem for MemFs {
    fn kind(&self) -> &'static str {
        "memfs"
    }
    fn lstat(&self, path: &[u8]) -> Result<Option<NodeInfo>, FsError> {
        Ok(self.get(path).map(|n| match n {
            Node::Dir => NodeInfo {
                kind: NodeKind::Dir,
                size: 0,
            },
            Node::File(d) => NodeInfo {
                kind: NodeKind::File,
                size: d.len() as u64,
            },
            Node::Link(t) => NodeInfo {
                kind: NodeKind::Symlink,
                size: t.len() as u64,
            },
        }))
    }
    fn read_link(&self, path: &[u8]) -> Result<Vec<u8>, FsError> {
        match self.get(path) {
            Some(Node::Link(t)) => Ok(t.clone()),
            _ => Err(FsError::Path {
                path: String::from_utf8_lossy(path).into_owned(),
                rule: "not a symlink".into(),
            }),
        }
    }
    fn read_dir(&self, path: &[u8]) -> Result<Vec<DirEntry>, FsError> {
        let mut prefix = path.to_vec();
        if prefix != b"/" {
            prefix.push(b'/');
        }
        Ok(self
            .nodes
            .iter()
            .filter_map(|(p, n)| {
                let rest = p.strip_prefix(&prefix[..])?;
                if rest.is_empty() || rest.contains(&b'/') {
                    return None;
                }
                let kind = match n {
                    Node::Dir => NodeKind::Dir,
                    Node::File(_) => NodeKind::File,
                    Node::Link(_) => NodeKind::Symlink,
                };
                Some(DirEntry {
                    name: rest.to_vec(),
                    kind,
                })
            })
            .collect())
    }
    fn read_at(&self, path: &[u8], offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        match self.get(path) {
            Some(Node::File(d)) => {
                let start = (offset as usize).min(d.len());
                let n = buf.len().min(d.len() - start);
                buf[..n].copy_from_slice(&d[start..start + n]);
                Ok(n)
            }
            _ => Err(FsError::Path {
                path: String::from_utf8_lossy(path).into_owned(),
                rule: "not a file".into(),
            }),
        }
    }
}
