//! Canvas: what each session's canvas shows, folded from `CanvasPresented` and
//! `CanvasCleared`. Time travel folds the same events, so the state at any seq shows the
//! canvas as it was.

use clawos_events::{EventPayload, RecordedEvent};

use crate::changes::Changes;
use crate::fold::Projection;
use crate::value::Table;
use crate::{row, ProjectionError};

/// `canvas(session_id, agent, kind, title, content, seq)`.
pub const CANVAS: Table = Table {
    name: "canvas",
    columns: &["session_id", "agent", "kind", "title", "content", "seq"],
    key_len: 1,
};

/// The canvas projection (stateless: each event sets or clears a row).
#[derive(Default)]
pub struct Canvas;

impl Projection for Canvas {
    fn name(&self) -> &'static str {
        "canvas"
    }
    fn tables(&self) -> &'static [&'static Table] {
        &[&CANVAS]
    }
    fn wants(&self, kind: &str) -> bool {
        matches!(kind, "CanvasPresented" | "CanvasCleared")
    }
    fn apply(&mut self, event: &RecordedEvent, payload: &EventPayload, out: &mut Changes) {
        let session = event.session_id().unwrap_or("");
        match payload {
            EventPayload::CanvasPresented(p) => out.upsert(
                &CANVAS,
                row![
                    session,
                    &p.agent,
                    &p.kind,
                    p.title.clone(),
                    &p.content,
                    event.seq
                ],
            ),
            EventPayload::CanvasCleared(_) => out.delete(&CANVAS, row![session]),
            _ => {}
        }
    }
    fn save_state(&self) -> Vec<u8> {
        Vec::new()
    }
    fn load_state(&mut self, _: &[u8]) -> Result<(), ProjectionError> {
        Ok(())
    }
}
