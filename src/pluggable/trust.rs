//! Which sockets plughost talks to.
//!
//! A component receives its `Init` with every `secretKeyRef` already
//! resolved, and then all of its traffic, so plughost must only ever talk to
//! processes it trusts. Socket file permissions do not protect anything here
//! (root bypasses them, and the Go component SDK creates world-writable
//! sockets), and `connect(2)` follows symbolic links. So:
//!
//! * **The folder** must not let others plant sockets: [`check_dir`] refuses a
//!   folder (or a symbolic link to one) owned by an untrusted user, or
//!   writable by group or others, unless
//!   [`GrpcOptions::allow_shared_socket_dir`] is set (then it warns).
//! * **Every dial** ([`connect`]: discovery probes, the first connection,
//!   every reconnection) refuses a path that is a symbolic link, and checks
//!   after connecting who serves the socket (`SO_PEERCRED`: the uid the
//!   server had when it called `listen`, which it cannot forge). Only
//!   plughost's own effective uid and [`GrpcOptions::trusted_uids`] are
//!   accepted; the connection is dropped before a single byte is sent.

use std::io;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::Path;

use tokio::net::UnixStream;

use super::GrpcOptions;

/// plughost's own effective uid: always trusted.
pub fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn trusted(uid: u32, options: &GrpcOptions) -> bool {
    uid == own_uid() || options.trusted_uids.contains(&uid)
}

fn who(options: &GrpcOptions) -> String {
    let mut uids = vec![own_uid()];
    uids.extend(options.trusted_uids.iter().copied().filter(|u| *u != own_uid()));
    let uids: Vec<String> = uids.iter().map(u32::to_string).collect();
    format!("trusted: {}", uids.join(", "))
}

/// Whether `dir` is safe to take sockets from: owned by a trusted user (or
/// root) and writable by nobody else. A missing folder is fine (it holds no
/// sockets). The error says what is wrong and how to fix it.
pub fn check_dir(dir: &Path, options: &GrpcOptions) -> Result<(), String> {
    let owner_ok = |uid: u32| uid == 0 || trusted(uid, options);
    let link = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot inspect socket folder {}: {e}", dir.display())),
    };
    if link.file_type().is_symlink() && !owner_ok(link.uid()) {
        return Err(format!(
            "socket folder {} is a symbolic link owned by uid {}, not by a trusted user ({}): it could be \
             pointed anywhere",
            dir.display(),
            link.uid(),
            who(options)
        ));
    }
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot inspect socket folder {}: {e}", dir.display())),
    };
    if !owner_ok(meta.uid()) {
        return Err(format!(
            "socket folder {} is owned by uid {}, not by a trusted user ({}): its owner could plant sockets \
             in it; use a folder of your own (chmod 0700)",
            dir.display(),
            meta.uid(),
            who(options)
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "socket folder {} is writable by {} (mode {mode:04o}): any local user could plant a socket that \
             plughost would use as a component; run `chmod go-w {}`",
            dir.display(),
            if mode & 0o002 != 0 { "everyone" } else { "its group" },
            dir.display()
        ));
    }
    Ok(())
}

fn refused(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, reason)
}

/// Connects to `socket` if it is a socket itself (not a symbolic link)
/// served by a trusted uid; see the module docs.
pub async fn connect(socket: &Path, options: &GrpcOptions) -> io::Result<UnixStream> {
    let meta = std::fs::symlink_metadata(socket)?;
    if meta.file_type().is_symlink() {
        return Err(refused(format!(
            "{} is a symbolic link; plughost does not follow links out of the socket folder",
            socket.display()
        )));
    }
    if !meta.file_type().is_socket() {
        return Err(refused(format!("{} is not a socket", socket.display())));
    }
    let stream = UnixStream::connect(socket).await?;
    let uid = stream.peer_cred()?.uid();
    if !trusted(uid, options) {
        return Err(refused(format!(
            "{} is served by a process of uid {uid}, not a trusted user ({}); refused before sending \
             anything (trust it with --trust-socket-uid {uid})",
            socket.display(),
            who(options)
        )));
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn folders_others_can_write_are_refused() {
        let options = GrpcOptions::default();
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check_dir(dir.path(), &options), Ok(()));
        assert_eq!(check_dir(&dir.path().join("missing"), &options), Ok(()));
        for (mode, who) in [(0o777, "everyone"), (0o1777, "everyone"), (0o770, "its group")] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let reason = check_dir(dir.path(), &options).unwrap_err();
            assert!(reason.contains(&format!("writable by {who}")) && reason.contains("chmod go-w"), "{reason}");
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check_dir(dir.path(), &options), Ok(()));
    }

    #[test]
    fn folders_owned_by_another_user_are_refused() {
        if own_uid() != 0 {
            eprintln!("skipped: changing a folder's owner needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("theirs");
        std::fs::create_dir(&folder).unwrap();
        std::os::unix::fs::chown(&folder, Some(65534), Some(65534)).unwrap();
        let reason = check_dir(&folder, &GrpcOptions::default()).unwrap_err();
        assert!(reason.contains("owned by uid 65534"), "{reason}");
        let trusting = GrpcOptions { trusted_uids: vec![65534], ..GrpcOptions::default() };
        assert_eq!(check_dir(&folder, &trusting), Ok(()));
        // A link to it, made by someone else, is refused for the link's owner.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
        let reason = check_dir(&link, &GrpcOptions::default()).unwrap_err();
        assert!(reason.contains("symbolic link owned by uid 65534"), "{reason}");
    }

    #[tokio::test]
    async fn symbolic_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&real).unwrap();
        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let options = GrpcOptions::default();
        assert!(connect(&real, &options).await.is_ok(), "our own socket is fine");
        let err = connect(&link, &options).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }
}
