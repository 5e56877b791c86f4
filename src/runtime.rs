//! Runs handler futures: in place when the handler is in-memory, else on napi's tokio runtime.

use crate::errors;
use napi::bindgen_prelude::*;
use ostro_session_core::SessionError;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Returns a Promise of `fut`'s result, converted on the JS thread by `done`. In-memory handlers
/// (`inline`) are polled once in place: no thread hop for work that never waits.
pub fn promise<'env, T, V, F, D>(
    env: &'env Env,
    inline: bool,
    fut: F,
    done: D,
) -> Result<PromiseRaw<'env, V>>
where
    T: Send + 'static,
    V: ToNapiValue + 'static,
    F: Future<Output = std::result::Result<T, SessionError>> + Send + 'static,
    D: FnOnce(T) -> std::result::Result<V, SessionError> + 'static,
{
    if inline {
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
            return match r.and_then(done) {
                Ok(v) => PromiseRaw::resolve(env, v),
                Err(e) => PromiseRaw::reject(env, errors::reject(&e)),
            };
        }
        // An inline handler that is not ready breaks its contract: report it, never block.
        let e = SessionError::Handler("an in-memory handler did not complete in place".into());
        return PromiseRaw::reject(env, errors::reject(&e));
    }
    env.spawn_future_with_callback(
        async move { fut.await.map_err(|e| errors::reject(&e)) },
        move |_, t| done(t).map_err(|e| errors::reject(&e)),
    )
}
