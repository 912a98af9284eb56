//! The files a game serves over plain HTTP on its game port (`GET /` and the like), beside the
//! WebSocket: the game's choice, from none (the default) to a page built into its binary or a
//! directory read at start.
//!
//! Files are held in memory and served by the reactor from there, so serving one never waits
//! on a disk. A directory is read once, when [`StaticFiles::from_dir`] is called: a change to
//! it takes a restart.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

/// The most bytes [`StaticFiles::from_dir`] reads, all files together: a game page and its
/// scripts, not a media library. Past it, `from_dir` fails and says so.
pub const MAX_STATIC_DIR_BYTES: u64 = 64 << 20;

/// One file built into the binary (`include_bytes!`).
#[derive(Debug, Clone, Copy)]
pub struct StaticFile {
    /// The path it is served at, starting with `/` (`/index.html` is also served at `/`).
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

/// The files a server answers plain HTTP `GET`s with. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct StaticFiles(Files);

/// A file read from disk: its path, `Content-Type` and bytes (shared by every response that
/// sends it, so a thousand clients fetching it cost one copy).
type LoadedFile = (String, &'static str, Bytes);

#[derive(Debug, Clone, Default)]
enum Files {
    #[default]
    None,
    Embedded(&'static [StaticFile]),
    Loaded(Arc<Vec<LoadedFile>>),
}

impl StaticFiles {
    /// No files: every plain `GET` but `/metrics` is answered 404. The default.
    pub const fn none() -> Self {
        Self(Files::None)
    }

    /// Files built into the binary.
    pub const fn embedded(files: &'static [StaticFile]) -> Self {
        Self(Files::Embedded(files))
    }

    /// Every file under `dir` (and its subdirectories), read now, served at its path relative
    /// to `dir`; the `Content-Type` follows the file's extension. Symbolic links are skipped
    /// (so a link cannot pull in files from elsewhere, or loop). Fails if `dir` cannot be read,
    /// or holds more than [`MAX_STATIC_DIR_BYTES`].
    pub fn from_dir(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        let mut files = Vec::new();
        let mut total = 0;
        read_dir(dir.as_ref(), "", &mut files, &mut total)?;
        Ok(Self(Files::Loaded(Arc::new(files))))
    }

    /// The body and `Content-Type` of the file at `path` (a query string is ignored).
    pub fn get(&self, path: &str) -> Option<(&[u8], &str)> {
        self.find(path).map(|(body, content_type)| match body {
            Body::Static(body) => (body, content_type),
            Body::Loaded(body) => (&body[..], content_type),
        })
    }

    /// As [`StaticFiles::get`], with the body as a shared buffer that a response can hold
    /// without copying it.
    pub(crate) fn get_shared(&self, path: &str) -> Option<(Bytes, &str)> {
        self.find(path).map(|(body, content_type)| match body {
            Body::Static(body) => (Bytes::from_static(body), content_type),
            Body::Loaded(body) => (body.clone(), content_type),
        })
    }

    /// The file at `path`, `/` meaning `/index.html`, a query string ignored.
    fn find(&self, path: &str) -> Option<(Body<'_>, &str)> {
        let path = path.split('?').next().unwrap_or(path);
        let path = if path == "/" { "/index.html" } else { path };
        match &self.0 {
            Files::None => None,
            Files::Embedded(files) => {
                files.iter().find(|f| f.path == path).map(|f| (Body::Static(f.body), f.content_type))
            }
            Files::Loaded(files) => {
                files.iter().find(|(p, _, _)| p == path).map(|(_, ct, body)| (Body::Loaded(body), *ct))
            }
        }
    }
}

/// Where a found file's bytes are: built into the binary, or read at start.
enum Body<'a> {
    Static(&'static [u8]),
    Loaded(&'a Bytes),
}

fn read_dir(dir: &Path, prefix: &str, files: &mut Vec<LoadedFile>, total: &mut u64) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{prefix}/{name}");
        let kind = entry.file_type()?;
        if kind.is_dir() {
            read_dir(&entry.path(), &path, files, total)?;
        } else if kind.is_file() {
            *total += entry.metadata()?.len();
            if *total > MAX_STATIC_DIR_BYTES {
                return Err(std::io::Error::other(format!(
                    "{} holds more than {MAX_STATIC_DIR_BYTES} bytes of files",
                    dir.display()
                )));
            }
            let body = std::fs::read(entry.path())?;
            files.push((path, content_type(&name), Bytes::from(body)));
        }
    }
    Ok(())
}

/// The `Content-Type` for a file name's extension.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_served_by_relative_path_with_its_index_at_the_root() {
        let dir = std::env::temp_dir().join(format!("ticksock-static-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("js")).expect("mkdir");
        std::fs::write(dir.join("index.html"), "<p>hi</p>").expect("write");
        std::fs::write(dir.join("js/app.js"), "1").expect("write");
        let files = StaticFiles::from_dir(&dir).expect("reads");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(files.get("/"), Some((&b"<p>hi</p>"[..], "text/html; charset=utf-8")));
        assert_eq!(files.get("/js/app.js?v=2"), Some((&b"1"[..], "text/javascript; charset=utf-8")));
        assert_eq!(files.get("/nope"), None);
        assert_eq!(StaticFiles::none().get("/"), None);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        assert!(StaticFiles::from_dir("/nonexistent/ticksock").is_err());
    }
}
