//! Loading a session as a sequence of steps that the engine decides and a caller carries out
//! ([`LoadStep`]): the read, a renewed id's forward, the destruction of an expired record, and
//! an id renewal's two writes. [`load`] carries them out through a [`SessionHandler`]; the
//! binding's JS-handler bridge carries out the same steps with a JS driver, so the rules live
//! here once. [`missing_reason`] says why a load found no session, for the `expired` event.

use crate::error::Result;
use crate::handler::{CasOutcome, SessionHandler, WriteMeta};
use crate::session::Session;
use std::sync::{Arc, Mutex};

/// What a load must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadStep {
    /// Read the record of this id, then call [`Session::after_read`] with what it holds (`""`
    /// for none).
    Read(String),
    /// Destroy the record of this id, then call [`Session::after_destroy`].
    Destroy(String),
    /// Renew the id: write `payload` under `new_id` (which has no record), then replace the
    /// record of `old_id` with `marker` only if it still holds `base` (compare-and-set; a plain
    /// write on a driver without it), then call [`Session::after_renew`] with whether the marker
    /// was written and, when not, what the old record holds now.
    Renew {
        /// The new id.
        new_id: String,
        /// The session under the new id.
        payload: String,
        /// The id being renewed.
        old_id: String,
        /// The forward marker to leave under the old id.
        marker: String,
        /// What the old record held when it was read.
        base: String,
    },
    /// The load is over.
    Done,
}

/// Access to a session between the awaits of a load: locked for each sync step only.
pub trait SessionCell: Send + Sync {
    /// Runs `f` on the session.
    fn with<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R;
}

impl SessionCell for Mutex<Session> {
    fn with<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        f(&mut self
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl SessionCell for Mutex<&mut Session> {
    fn with<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        f(&mut self
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl<T: SessionCell + ?Sized> SessionCell for Arc<T> {
    fn with<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        (**self).with(f)
    }
}

/// Loads the session in `cell` through `handler`, step by step (see [`LoadStep`]). `meta` goes
/// with a renewal's write of the new record; the forward marker is written without it, so that
/// a driver indexing records by user never lists a marker as a session.
///
/// # Errors
/// The handler's errors and the session's (see [`Session::after_read`]).
pub async fn load<C: SessionCell>(
    handler: &dyn SessionHandler,
    cell: &C,
    meta: &WriteMeta,
) -> Result<()> {
    let keeps = handler.keeps_records();
    let mut step = cell.with(|s| s.begin_load(keeps));
    loop {
        step = match step {
            LoadStep::Read(id) => {
                let raw = handler.read(&id).await?;
                cell.with(|s| s.after_read(raw))?
            }
            LoadStep::Destroy(id) => {
                handler.destroy(&id).await?;
                cell.with(Session::after_destroy)?
            }
            LoadStep::Renew {
                new_id,
                payload,
                old_id,
                marker,
                base,
            } => {
                handler.write(&new_id, &payload, meta).await?;
                let outcome = handler
                    .write_if_unchanged(&old_id, &marker, &base, &WriteMeta::default())
                    .await?;
                let (claimed, current) = match outcome {
                    CasOutcome::Written => (true, String::new()),
                    CasOutcome::Conflict(now) => (false, now),
                };
                cell.with(|s| s.after_renew(claimed, current))?
            }
            LoadStep::Done => return Ok(()),
        }
    }
}

/// The `reason` of the `expired` event due for the session in `cell`, whose load found no
/// session under the id a client presented (see [`Session::missing_reason`] for the rule):
/// `handler` is asked whether a tombstone is there only when the load itself cannot tell.
/// An extra read, so callers ask only when someone listens for `expired` events.
///
/// # Errors
/// The handler's errors.
pub async fn missing_reason<C: SessionCell>(
    handler: &dyn SessionHandler,
    cell: &C,
) -> Result<Option<crate::lifecycle::Expiry>> {
    let (id, stale_forward) = cell.with(|s| (s.id().to_owned(), s.met_stale_forward()));
    let tombstone = !stale_forward && handler.is_tombstone(&id).await?;
    Ok(cell.with(|s| s.missing_reason(tombstone)))
}
