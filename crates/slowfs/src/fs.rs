//! The filesystem itself: the backing folder, read-only, with every read sent through the
//! [`Device`] queue.
//!
//! Inode numbers: FUSE wants a number per file, 1 for the root. We give each backing file (by
//! its device and inode number) the next free number and remember the path we last saw it
//! under. A file replaced in the backing folder by a rename is a new backing inode, so it gets a
//! new number, as it would on the real disk. Numbers are never forgotten (we ignore the
//! kernel's `forget`): a benchmark run sees a few files, and a stable number per file is simpler
//! than reference counts.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, Request,
};

use crate::Options;
use crate::device::{Counters, Device};

/// Names and attributes are never cached by the kernel: each `stat` and each path walk asks us
/// again (cheaply, outside the queue), so a live edit of the backing folder is seen at once.
const NO_CACHE: Duration = Duration::ZERO;

pub(crate) struct SlowFs {
    options: Options,
    inodes: Mutex<Inodes>,
    /// Open backing files by the handle we gave the kernel; `Arc` so a read in a worker thread
    /// keeps its file alive even if `release` arrives meanwhile.
    handles: Arc<Mutex<HashMap<u64, Arc<File>>>>,
    next_handle: AtomicU64,
    device: Device,
}

impl std::fmt::Debug for SlowFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowFs")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Inodes {
    /// (st_dev, st_ino) of a backing file -> our inode number.
    by_backing: HashMap<(u64, u64), u64>,
    /// Our inode number -> the backing path last seen for it, and its (st_dev, st_ino).
    by_number: HashMap<u64, (PathBuf, (u64, u64))>,
    next: u64,
}

impl Inodes {
    fn number_for(&mut self, path: PathBuf, meta: &Metadata) -> u64 {
        let key = (meta.dev(), meta.ino());
        let number = *self.by_backing.entry(key).or_insert_with(|| {
            let n = self.next;
            self.next += 1;
            n
        });
        self.by_number.insert(number, (path, key));
        number
    }

    fn path_of(&self, number: INodeNo) -> Option<(PathBuf, (u64, u64))> {
        self.by_number.get(&number.0).cloned()
    }
}

impl SlowFs {
    pub(crate) fn new(
        backing: PathBuf,
        options: Options,
        counters: Arc<Counters>,
    ) -> std::io::Result<SlowFs> {
        let root = std::fs::metadata(&backing)?;
        let mut inodes = Inodes {
            by_backing: HashMap::new(),
            by_number: HashMap::new(),
            next: INodeNo::ROOT.0,
        };
        let root_number = inodes.number_for(backing, &root);
        debug_assert_eq!(root_number, INodeNo::ROOT.0);
        let device = Device::new(options.queue_depth, counters)?;
        Ok(SlowFs {
            options,
            inodes: Mutex::new(inodes),
            handles: Arc::new(Mutex::new(HashMap::new())),
            next_handle: AtomicU64::new(1),
            device,
        })
    }

    fn inodes(&self) -> MutexGuard<'_, Inodes> {
        lock(&self.inodes)
    }

    fn handles(&self) -> MutexGuard<'_, HashMap<u64, Arc<File>>> {
        lock(&self.handles)
    }

    /// The backing path of `number` and its metadata now, if the path still names the same
    /// backing file.
    fn current(&self, number: INodeNo) -> Result<(PathBuf, Metadata), Errno> {
        let (path, key) = self.inodes().path_of(number).ok_or(Errno::ENOENT)?;
        let meta = std::fs::symlink_metadata(&path).map_err(Errno::from)?;
        if (meta.dev(), meta.ino()) != key {
            // Replaced behind our back; the kernel looks the name up again (TTL zero).
            return Err(Errno::ESTALE);
        }
        Ok((path, meta))
    }
}

/// A panic while holding one of our locks leaves its table consistent (every update is a single
/// insert or remove), so a poisoned lock is still safe to use.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn attr(number: u64, meta: &Metadata) -> FileAttr {
    FileAttr {
        ino: INodeNo(number),
        size: meta.size(),
        blocks: meta.blocks(),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind: FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile),
        perm: (meta.mode() & 0o7777) as u16,
        nlink: meta.nlink() as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: meta.rdev() as u32,
        blksize: meta.blksize() as u32,
        flags: 0,
    }
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    let since = Duration::new(secs.unsigned_abs(), nsecs as u32);
    if secs >= 0 {
        UNIX_EPOCH + since
    } else {
        UNIX_EPOCH - since
    }
}

/// Reads up to `size` bytes at `offset`, looping over short reads, stopping at end of file.
fn read_at(file: &File, offset: u64, size: u32) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0; size as usize];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

impl fuser::Filesystem for SlowFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Asynchronous reads (io_uring, AIO) travel as FUSE "background" requests, of which
        // the kernel keeps at most max_background outstanding (16 by default) and makes the
        // next submitter wait. A block device lets twice its queue depth wait (blk-mq's
        // nr_requests); do the same, so the queue depth is ours rather than that default's.
        let outstanding = (2 * self.options.queue_depth).clamp(16, u16::MAX as usize) as u16;
        let _ = config.set_max_background(outstanding);
        if self.options.async_reads {
            // An older kernel without it still works, with synchronous reads only.
            let _ = config.add_capabilities(InitFlags::FUSE_ASYNC_DIO);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let parent_path = match self.current(parent) {
            Ok((path, _)) => path,
            Err(e) => return reply.error(e),
        };
        let path = parent_path.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) => {
                let number = self.inodes().number_for(path, &meta);
                reply.entry(&NO_CACHE, &attr(number, &meta), Generation(0));
            }
            Err(e) => reply.error(e.into()),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        // With an open file (fstat), answer for that file even if its name now points
        // elsewhere: that is what fstat on the real disk would say.
        if let Some(file) = fh.and_then(|fh| self.handles().get(&fh.0).cloned()) {
            return match file.metadata() {
                Ok(meta) => reply.attr(&NO_CACHE, &attr(ino.0, &meta)),
                Err(e) => reply.error(e.into()),
            };
        }
        match self.current(ino) {
            Ok((_, meta)) => reply.attr(&NO_CACHE, &attr(ino.0, &meta)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self
            .current(ino)
            .and_then(|(path, _)| std::fs::read_link(path).map_err(Errno::from))
        {
            Ok(target) => reply.data(target.as_os_str().as_encoded_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        // The mount is read-only (the kernel already refuses writes with EROFS); this is the
        // same promise, kept by us as well.
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        let (path, (_, backing_ino)) = match self.inodes().path_of(ino) {
            Some(found) => found,
            None => return reply.error(Errno::ENOENT),
        };
        let open = move || -> Result<File, Errno> {
            let file = File::open(&path).map_err(Errno::from)?;
            let meta = file.metadata().map_err(Errno::from)?;
            if meta.ino() != backing_ino {
                return Err(Errno::ESTALE);
            }
            Ok(file)
        };
        self.device.counters.opens.fetch_add(1, Ordering::Relaxed);
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        let handles = Arc::clone(&self.handles);
        // The file is entered in the table before the reply, so the kernel never holds a
        // handle we cannot find.
        let complete = move |result: Result<File, Errno>| match result {
            Ok(file) => {
                lock(&handles).insert(fh, Arc::new(file));
                // FOPEN_DIRECT_IO: no page cache for this file; every read comes to us.
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
            }
            Err(e) => reply.error(e),
        };
        if self.options.open_delay.is_zero() {
            complete(open());
        } else {
            self.device.submit(self.options.open_delay, open, complete);
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(file) = self.handles().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        self.device.counters.reads.fetch_add(1, Ordering::Relaxed);
        self.device.submit(
            self.options.delay,
            move || read_at(&file, offset, size),
            move |result| match result {
                Ok(bytes) => reply.data(&bytes),
                Err(e) => reply.error(e.into()),
            },
        );
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.handles().remove(&fh.0);
        reply.ok();
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let path = match self.current(ino) {
            Ok((path, _)) => path,
            Err(e) => return reply.error(e),
        };
        let listing = match std::fs::read_dir(&path) {
            Ok(listing) => listing,
            Err(e) => return reply.error(e.into()),
        };
        // "." and "..", then the entries; each entry's offset is the position of the next one.
        let mut entries = vec![
            (ino.0, FileType::Directory, OsStr::new(".").to_owned()),
            (ino.0, FileType::Directory, OsStr::new("..").to_owned()),
        ];
        for entry in listing.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            let number = self.inodes().number_for(entry.path(), &meta);
            let kind = FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile);
            entries.push((number, kind, entry.file_name()));
        }
        for (i, (number, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(number), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }
}
