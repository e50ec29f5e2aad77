//! The local folder a process spills to, and the removal of what a killed process left there.
//!
//! A partition larger than memory writes its sorted runs and key files to local disk (see
//! `spill` and `keys`). They are removed when the partition is done, but a process that is killed
//! (Ctrl-C, the kernel's out-of-memory killer, a Lambda timeout) leaves them behind: up to twice a
//! partition's rows, and on Lambda a warm container's `/tmp` fills up until every later run fails.
//!
//! So a process spills into a folder of its own, `eventlake-tmp-*` under the spill folder, and
//! holds an exclusive lock on a file in it for as long as it spills there. The lock goes with the
//! process, however it ends. Before it makes its own folder, a process removes every
//! `eventlake-tmp-*` folder beside it whose lock it can take: its owner is gone. A folder whose
//! lock is held, or that has no lock file yet (being made: the file is locked before it takes its
//! name), is left alone.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use crate::error::Result;
use crate::spill::io_error;

/// The names of spill folders start with this.
const PREFIX: &str = "eventlake-tmp-";

/// The file whose lock says the folder's process is alive.
const LOCK: &str = "owner.lock";

/// A process's spill folder, removed when the last run or key file in it is done.
#[derive(Debug)]
pub(crate) struct Scratch {
    // Declared first, so the folder is removed before the lock is let go.
    dir: tempfile::TempDir,
    _lock: File,
}

impl Scratch {
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The spill folders in use, by the folder they are in.
static IN_USE: Mutex<BTreeMap<PathBuf, Weak<Scratch>>> = Mutex::new(BTreeMap::new());

/// This process's spill folder in `parent` (the system's temporary folder when `None`), made
/// (after the folders of dead processes there are removed) when none is in use.
pub(crate) fn scratch(parent: Option<&Path>) -> Result<Arc<Scratch>> {
    let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let mut in_use = IN_USE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = in_use.get(&parent).and_then(Weak::upgrade) {
        return Ok(s);
    }
    remove_abandoned(&parent);
    let dir = tempfile::Builder::new()
        .prefix(PREFIX)
        .tempdir_in(&parent)
        .map_err(|e| io_error("create a spill folder in", &parent, e))?;
    // Locked under another name, then named: a sweep that finds the lock file finds it held
    // (a lock goes with the file, not its name).
    let (taking, lock_path) = (dir.path().join("taking.lock"), dir.path().join(LOCK));
    let lock = File::create(&taking).map_err(|e| io_error("create", &taking, e))?;
    lock.try_lock().map_err(|e| io_error("lock", &taking, e))?;
    std::fs::rename(&taking, &lock_path).map_err(|e| io_error("name", &lock_path, e))?;
    let s = Arc::new(Scratch { dir, _lock: lock });
    in_use.retain(|_, w| w.strong_count() > 0);
    in_use.insert(parent, Arc::downgrade(&s));
    Ok(s)
}

/// Removes the spill folders in `parent` whose process is gone; returns how many. Nothing here
/// fails a run: a folder that cannot be read or removed is reported and left.
fn remove_abandoned(parent: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.starts_with(PREFIX)) {
            continue;
        }
        let dir = entry.path();
        // No lock file: being made, or not ours.
        let Ok(lock) = File::open(dir.join(LOCK)) else {
            continue;
        };
        if lock.try_lock().is_err() {
            continue;
        }
        let bytes = size(&dir);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                removed += 1;
                tracing::info!(
                    folder = %dir.display(),
                    bytes,
                    "removed the spill folder of a process that ended before it could"
                );
            }
            // Its owner removed it between the lock being let go and now.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                folder = %dir.display(),
                error = %e,
                "cannot remove the spill folder of an ended process"
            ),
        }
    }
    removed
}

/// Bytes of the files in `dir` and its folders.
fn size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_process_folder_goes_and_a_live_one_stays() {
        let parent = tempfile::tempdir().unwrap();
        // Left by a process that was killed: its lock file is there, and nobody holds it.
        let dead = parent.path().join(format!("{PREFIX}dead"));
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(LOCK), b"").unwrap();
        std::fs::create_dir(dead.join("eventlake-spill-x")).unwrap();
        std::fs::write(dead.join("eventlake-spill-x/run-0.arrow"), vec![0u8; 4096]).unwrap();
        // Being made by another process: no lock file yet.
        let new = parent.path().join(format!("{PREFIX}new"));
        std::fs::create_dir(&new).unwrap();
        // Alive: another process holds its lock (here, another open file of this one).
        let live = parent.path().join(format!("{PREFIX}live"));
        std::fs::create_dir(&live).unwrap();
        let held = File::create(live.join(LOCK)).unwrap();
        held.lock().unwrap();
        // Not ours.
        let other = parent.path().join("other-tmp");
        std::fs::create_dir(&other).unwrap();

        let s = scratch(Some(parent.path())).unwrap();
        assert!(!dead.exists(), "the dead process's folder is removed");
        assert!(new.exists() && live.exists() && other.exists());
        assert!(s.path().join(LOCK).exists());

        // The same folder while it is in use; a sweep then leaves it alone.
        let again = scratch(Some(parent.path())).unwrap();
        assert_eq!(again.path(), s.path());
        assert_eq!(remove_abandoned(parent.path()), 0);
        assert!(s.path().exists());

        // Removed with its last user, and a new one made after.
        let path = s.path().to_path_buf();
        drop((s, again));
        assert!(!path.exists());
        let next = scratch(Some(parent.path())).unwrap();
        assert_ne!(next.path(), path);
        drop(held);
        assert_eq!(
            remove_abandoned(parent.path()),
            1,
            "the live one, once let go"
        );
        assert!(!live.exists() && next.path().exists());
    }
}
