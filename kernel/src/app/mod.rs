//! `/app`: the companion app, an installable web app served from the binary (no CDN). It
//! pairs with a one-time code (`clawos devices pair`), chats with streaming replies and
//! photos, shows what the agent presents on its canvas, and answers node commands
//! (`camera.snap`, `location.get`, `canvas.present`, `system.notify`) with the browser's
//! APIs. It holds no data of its own: everything goes over `/ws`.

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::gateway::Gateway;

/// One file of the app: its path under `/app`, content type and bytes.
struct Asset {
    path: &'static str,
    kind: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/app/app.js",
        kind: "text/javascript; charset=utf-8",
        body: include_str!("static/app.js"),
    },
    Asset {
        path: "/app/app.css",
        kind: "text/css; charset=utf-8",
        body: include_str!("static/app.css"),
    },
    Asset {
        path: "/app/manifest.webmanifest",
        kind: "application/manifest+json",
        body: include_str!("static/manifest.webmanifest"),
    },
    Asset {
        path: "/app/icon.svg",
        kind: "image/svg+xml",
        body: include_str!("static/icon.svg"),
    },
];

const INDEX: &str = include_str!("static/index.html");
const WORKER: &str = include_str!("static/sw.js");

/// The routes of `/app`.
pub fn routes() -> Router<Arc<Gateway>> {
    let mut r = Router::new()
        .route("/app", get(index))
        .route("/app/", get(index))
        .route("/app/sw.js", get(worker));
    for a in ASSETS {
        r = r.route(
            a.path,
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, a.kind),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    a.body,
                )
            }),
        );
    }
    r
}

async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
}

/// The service worker may control `/app` itself, not only what is under `/app/`.
async fn worker() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::HeaderName::from_static("service-worker-allowed"),
                "/app",
            ),
        ],
        WORKER,
    )
}
