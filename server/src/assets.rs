//! The demo page and the browser client, built into the binary so that `GET /` on the game
//! port shows the game with nothing else to install. The files live in `web/` at the
//! repository root (`web/dist/ticksock.js` is the compiled TypeScript client).

/// A file served over plain HTTP.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Its bytes.
    pub body: &'static [u8],
    /// Its `Content-Type`.
    pub content_type: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// The asset served at `path`, if any.
pub fn get(path: &str) -> Option<Asset> {
    let path = path.split('?').next().unwrap_or(path);
    let (body, content_type): (&'static [u8], _) = match path {
        "/" | "/index.html" => (include_bytes!("../../web/demo/index.html"), HTML),
        "/demo.js" => (include_bytes!("../../web/demo/demo.js"), JS),
        "/ticksock.js" => (include_bytes!("../../web/dist/ticksock.js"), JS),
        _ => return None,
    };
    Some(Asset { body, content_type })
}
