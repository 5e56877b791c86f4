//! Runs handler futures for the built-in drivers, and settles their Promises.
//!
//! - In-memory handlers (`inline`) are polled once in place: no thread hop for work that never
//!   waits.
//! - Every other future is polled **on the JS thread**, inside the tokio runtime's context. The
//!   work it hands off (SQLite's thread, the blocking pool for files, a socket task for redis)
//!   wakes the JS thread directly: one cross-thread hop back instead of a hop to a tokio worker
//!   and another one to the JS thread.
//! - Wake-ups are batched. Each env has one threadsafe function and one queue; a waker pushes its
//!   slot and signals the JS thread only when the queue was empty, and one wake-up polls every
//!   queued future and settles every Promise that is ready (one microtask checkpoint after).
//! - The sockets, timers and blocking pool run on one current-thread tokio runtime on one
//!   dedicated thread: on a machine with few cores, more threads compete with the JS thread.
//! - I/O that libuv itself watches on the JS thread (the redis connection, `redis_uv`) wakes
//!   its jobs inside the libuv callback: [`on_js_thread`] polls and settles them there, with no
//!   threadsafe-function round trip.
//!
//! Measured on 2 cores against the previous design (every future spawned on napi-rs's
//! multi-thread runtime, two tasks and one threadsafe function created per operation): see the
//! commit message.

use crate::errors;
use napi::bindgen_prelude::*;
use napi::sys;
use ostro_session_core::SessionError;
use std::cell::{Cell, RefCell};
use std::ffi::{c_void, CStr};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// The runtime the drivers' futures are polled in the context of: a current-thread runtime on
/// one dedicated thread, started on first use. It drives the sockets (redis, memcached, SQL
/// servers), the timers and the blocking pool; the futures themselves are polled on the JS thread.
/// napi-rs's own multi-thread runtime stays for the JS-handler bridge only.
fn runtime() -> tokio::runtime::Handle {
    static IO: OnceLock<Option<tokio::runtime::Handle>> = OnceLock::new();
    let own = IO.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let handle = rt.handle().clone();
        // The thread outlives any one env: keep this image mapped (napi-rs does the same for its
        // runtime).
        retain_current_module_for_unload_safety();
        std::thread::Builder::new()
            .name("ostro-session-io".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .ok()?;
        Some(handle)
    });
    match own {
        Some(h) => h.clone(),
        // No thread could be started: napi-rs's runtime does the same work.
        None => within_runtime_if_available(tokio::runtime::Handle::current),
    }
}

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

    let raw_env = env.raw();
    let local = Local::of(raw_env)?;
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    // SAFETY: `raw_env` is the live env of the current call, on its JS thread.
    check_status!(unsafe { sys::napi_create_promise(raw_env, &mut deferred, &mut promise) })?;

    let slot = local.reserve();
    let waker = Arc::new(SlotWaker {
        shared: Arc::clone(&local.shared),
        slot,
        queued: AtomicBool::new(false),
    });
    let mut job: Box<dyn Job> = Box::new(Op {
        fut: Box::pin(fut),
        done: Some(done),
        deferred,
        waker: Waker::from(Arc::clone(&waker)),
        flag: waker,
    });
    let finished = {
        let _rt = local.handle.enter();
        job.run(raw_env)
    };
    if finished {
        local.release(slot);
    } else {
        local.store(raw_env, slot, job);
    }
    Ok(PromiseRaw::new(raw_env, promise))
}

// ----- one operation ------------------------------------------------------------------------

/// A pending operation, polled on the JS thread.
trait Job {
    /// Polls the future; when it is done, settles the Promise and returns true. Never unwinds.
    fn run(&mut self, env: sys::napi_env) -> bool;
    /// Marks the job as no longer queued, before it is polled for a wake-up.
    fn unqueue(&self);
}

struct Op<F, D> {
    fut: Pin<Box<F>>,
    done: Option<D>,
    deferred: sys::napi_deferred,
    waker: Waker,
    flag: Arc<SlotWaker>,
}

impl<T, V, F, D> Job for Op<F, D>
where
    T: Send + 'static,
    V: ToNapiValue + 'static,
    F: Future<Output = std::result::Result<T, SessionError>> + Send + 'static,
    D: FnOnce(T) -> std::result::Result<V, SessionError> + 'static,
{
    fn run(&mut self, env: sys::napi_env) -> bool {
        let Some(done) = self.done.take() else {
            return true; // already settled
        };
        let mut cx = Context::from_waker(&self.waker);
        let fut = self.fut.as_mut();
        let result = match catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx))) {
            Ok(Poll::Pending) => {
                self.done = Some(done);
                return false;
            }
            Ok(Poll::Ready(r)) => r,
            Err(p) => Err(panicked(&*p)),
        };
        // The conversion runs user-visible code paths (`done`); a panic there rejects too.
        let value = catch_unwind(AssertUnwindSafe(|| match result.and_then(done) {
            // SAFETY: on the JS thread with the live env.
            Ok(v) => unsafe { V::to_napi_value(env, v) },
            Err(e) => Err(errors::reject(&e)),
        }))
        .unwrap_or_else(|p| Err(errors::reject(&panicked(&*p))));
        settle(env, self.deferred, value);
        true
    }

    fn unqueue(&self) {
        self.flag.queued.store(false, Ordering::Release);
    }
}

fn panicked(p: &(dyn std::any::Any + Send)) -> SessionError {
    let msg = if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    };
    SessionError::Handler(format!("a session driver operation panicked: {msg}"))
}

/// Resolves or rejects `deferred` (once; it is freed by napi then).
fn settle(env: sys::napi_env, deferred: sys::napi_deferred, value: Result<sys::napi_value>) {
    match value {
        // SAFETY: `deferred` came from napi_create_promise on this env and is settled once, here.
        Ok(v) => unsafe {
            sys::napi_resolve_deferred(env, deferred, v);
        },
        Err(e) => {
            // The error becomes a JS Error the way napi-rs builds rejections (`lib/errors.js`
            // restores the `ERR_SESSION_*` code from its message).
            // SAFETY: as above.
            unsafe {
                let js = match Error::to_napi_value(env, e) {
                    Ok(js) => js,
                    Err(_) => {
                        let mut exc = ptr::null_mut();
                        sys::napi_get_and_clear_last_exception(env, &mut exc);
                        exc
                    }
                };
                if !js.is_null() {
                    sys::napi_reject_deferred(env, deferred, js);
                }
            }
        }
    }
}

/// Wakes one slot's job: queues the slot for the JS thread, once until it is polled.
struct SlotWaker {
    shared: Arc<Shared>,
    slot: usize,
    queued: AtomicBool,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            if QUIET.with(Cell::get) {
                // Woken on the JS thread by an event `on_js_thread` drains right after.
                self.shared.push_quiet(self.slot);
            } else {
                self.shared.push(self.slot);
            }
        }
    }
}

// ----- the per-env completion channel -------------------------------------------------------

/// What any thread may touch: the queue of woken slots and the threadsafe function.
struct Shared {
    queue: Mutex<Queue>,
}

struct Queue {
    slots: Vec<usize>,
    /// The env's threadsafe function; null once the env tears down.
    tsfn: sys::napi_threadsafe_function,
}

// SAFETY: the raw tsfn is only used under the mutex, through napi's thread-safe call, and is
// nulled under the mutex before it is released.
unsafe impl Send for Queue {}

impl Shared {
    /// Queues a woken slot without signalling: the caller drains on the JS thread next.
    fn push_quiet(&self, slot: usize) {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if !q.tsfn.is_null() {
            q.slots.push(slot);
        }
    }

    fn is_empty(&self) -> bool {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .slots
            .is_empty()
    }

    /// Queues a woken slot; signals the JS thread when the queue was empty (one wake-up drains a
    /// whole batch).
    fn push(&self, slot: usize) {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if q.tsfn.is_null() {
            return; // the env is gone
        }
        let was_empty = q.slots.is_empty();
        q.slots.push(slot);
        if was_empty {
            // SAFETY: `tsfn` is live while non-null (nulled under this lock before release). The
            // tsfn's own queue is unbounded, so a non-blocking call never waits.
            unsafe {
                sys::napi_call_threadsafe_function(
                    q.tsfn,
                    ptr::null_mut(),
                    sys::ThreadsafeFunctionCallMode::nonblocking,
                )
            };
        }
    }
}

/// The JS thread's half, one per env: pending jobs by slot, and whether the loop is held open.
struct Local {
    env: sys::napi_env,
    shared: Arc<Shared>,
    tsfn: Cell<sys::napi_threadsafe_function>,
    handle: tokio::runtime::Handle,
    jobs: RefCell<Vec<Option<Box<dyn Job>>>>,
    free: RefCell<Vec<usize>>,
    pending: Cell<usize>,
    spare: RefCell<Vec<usize>>,
    /// The async context and resource object a direct drain opens its callback scope with
    /// (made on first use).
    scope: Cell<Option<(sys::napi_async_context, sys::napi_ref)>>,
}

thread_local! {
    /// The channels of the envs whose JS thread this is (one, except in unusual embedders).
    static LOCALS: RefCell<Vec<*const Local>> = const { RefCell::new(Vec::new()) };
    /// Set while [`on_js_thread`] runs its event: wakes queue without a threadsafe call.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `event` (an I/O callback libuv calls on this JS thread, outside any JS), then polls
/// every job it woke and settles their Promises at once, in a callback scope whose end runs
/// the microtasks: a completion found on the JS thread never goes through the threadsafe
/// function (an `eventfd` write and another loop turn).
pub(crate) fn on_js_thread(event: impl FnOnce()) {
    QUIET.with(|q| q.set(true));
    let r = catch_unwind(AssertUnwindSafe(event));
    QUIET.with(|q| q.set(false));
    drop(r);
    let locals = LOCALS.with(|l| l.borrow().clone());
    for p in locals {
        // SAFETY: pointers in LOCALS are live until their finalizer removes them, which cannot
        // run inside this libuv callback.
        let local = unsafe { &*p };
        if !local.shared.is_empty() {
            local.drain_now();
        }
    }
}

/// The JS thread's env of a live `Local`, to check what thread an I/O object belongs to.
pub(crate) fn owns(env: sys::napi_env) -> bool {
    LOCALS.with(|l| {
        l.borrow().iter().any(|p| {
            // SAFETY: as above.
            unsafe { (**p).env == env }
        })
    })
}

const NAME: &CStr = c"@ostro/session completions";

impl Local {
    /// This env's channel, created on first use.
    fn of(env: sys::napi_env) -> Result<&'static Local> {
        let found = LOCALS.with(|l| {
            l.borrow().iter().copied().find(|p| {
                // SAFETY: pointers in LOCALS are live until their finalizer removes them.
                unsafe { (**p).env == env }
            })
        });
        let ptr = match found {
            Some(p) => p,
            None => {
                let p = Self::create(env)?;
                LOCALS.with(|l| l.borrow_mut().push(p));
                p
            }
        };
        // SAFETY: freed only by the tsfn finalizer during env teardown, on this thread, when no
        // call of this module can be running any more.
        Ok(unsafe { &*ptr })
    }

    fn create(env: sys::napi_env) -> Result<*const Local> {
        let handle = runtime();
        let mut name = ptr::null_mut();
        // SAFETY: `env` is the live env of the current call; NAME is NUL-terminated UTF-8.
        check_status!(unsafe {
            sys::napi_create_string_utf8(env, NAME.as_ptr(), NAME.count_bytes() as isize, &mut name)
        })?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                slots: Vec::new(),
                tsfn: ptr::null_mut(),
            }),
        });
        let local = Box::into_raw(Box::new(Local {
            env,
            shared: Arc::clone(&shared),
            tsfn: Cell::new(ptr::null_mut()),
            handle,
            jobs: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            pending: Cell::new(0),
            spare: RefCell::new(Vec::new()),
            scope: Cell::new(None),
        }));
        let mut tsfn = ptr::null_mut();
        // SAFETY: `env` is live; no JS function (`drain` does the work); `local` outlives the
        // tsfn and is freed by its finalizer, which runs once, on this thread.
        let status = unsafe {
            sys::napi_create_threadsafe_function(
                env,
                ptr::null_mut(),
                ptr::null_mut(),
                name,
                0,
                1,
                local.cast(),
                Some(finalize),
                local.cast(),
                Some(drain),
                &mut tsfn,
            )
        };
        if status != sys::Status::napi_ok {
            // SAFETY: no tsfn was created, so nothing else refers to `local`.
            drop(unsafe { Box::from_raw(local) });
            return Err(Error::new(
                Status::GenericFailure,
                "could not create the completion channel",
            ));
        }
        // SAFETY: `local` is live (above); `tsfn` was just created on this thread. Unreferenced,
        // it keeps the loop alive only while an operation is pending (`store`/`drain`). The hook
        // runs at env teardown, before Node finalizes the tsfn (hooks run in reverse order).
        unsafe {
            (*local).tsfn.set(tsfn);
            sys::napi_unref_threadsafe_function(env, tsfn);
            sys::napi_add_env_cleanup_hook(env, Some(close), local.cast());
        }
        shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tsfn = tsfn;
        Ok(local)
    }

    /// Drains now, on the JS thread outside any JS: in a handle scope and a callback scope, so
    /// that the microtasks of the settled Promises run when it closes.
    fn drain_now(&self) {
        let env = self.env;
        let mut hs = ptr::null_mut();
        // SAFETY: on this env's JS thread, from a libuv callback (no JS on the stack).
        if unsafe { sys::napi_open_handle_scope(env, &mut hs) } != sys::Status::napi_ok {
            return;
        }
        let scope = self.callback_scope();
        // SAFETY: `self` is this env's Local; `drain` takes it as its context.
        unsafe {
            drain(
                env,
                ptr::null_mut(),
                (self as *const Local).cast_mut().cast(),
                ptr::null_mut(),
            )
        };
        // SAFETY: closed in reverse order of opening, on the same thread.
        unsafe {
            if let Some(cs) = scope {
                sys::napi_close_callback_scope(env, cs);
            }
            sys::napi_close_handle_scope(env, hs);
        }
    }

    /// Opens a callback scope with this env's async context (made on first use).
    fn callback_scope(&self) -> Option<sys::napi_callback_scope> {
        let env = self.env;
        // SAFETY: on the JS thread inside a handle scope; the reference keeps the resource
        // object alive for the env's lifetime.
        unsafe {
            let (cx, resource_ref) = match self.scope.get() {
                Some(s) => s,
                None => {
                    let mut obj = ptr::null_mut();
                    let mut name = ptr::null_mut();
                    let mut cx = ptr::null_mut();
                    let mut r = ptr::null_mut();
                    if sys::napi_create_object(env, &mut obj) != sys::Status::napi_ok
                        || sys::napi_create_string_utf8(
                            env,
                            NAME.as_ptr(),
                            NAME.count_bytes() as isize,
                            &mut name,
                        ) != sys::Status::napi_ok
                        || sys::napi_async_init(env, obj, name, &mut cx) != sys::Status::napi_ok
                        || sys::napi_create_reference(env, obj, 1, &mut r) != sys::Status::napi_ok
                    {
                        return None;
                    }
                    self.scope.set(Some((cx, r)));
                    (cx, r)
                }
            };
            let mut obj = ptr::null_mut();
            let mut cs = ptr::null_mut();
            if sys::napi_get_reference_value(env, resource_ref, &mut obj) != sys::Status::napi_ok
                || sys::napi_open_callback_scope(env, obj, cx, &mut cs) != sys::Status::napi_ok
            {
                return None;
            }
            Some(cs)
        }
    }

    /// A slot for a new job (empty until `store`).
    fn reserve(&self) -> usize {
        if let Some(i) = self.free.borrow_mut().pop() {
            return i;
        }
        let mut jobs = self.jobs.borrow_mut();
        jobs.push(None);
        jobs.len() - 1
    }

    fn release(&self, slot: usize) {
        self.free.borrow_mut().push(slot);
    }

    /// Keeps a job that is waiting; the loop stays alive while any is.
    fn store(&self, env: sys::napi_env, slot: usize, job: Box<dyn Job>) {
        if let Some(s) = self.jobs.borrow_mut().get_mut(slot) {
            *s = Some(job);
        }
        if self.pending.get() == 0 {
            // SAFETY: on the JS thread with the live env.
            unsafe { sys::napi_ref_threadsafe_function(env, self.tsfn.get()) };
        }
        self.pending.set(self.pending.get() + 1);
    }
}

/// The JS thread's wake-up: polls every woken job and settles those that are done.
unsafe extern "C" fn drain(
    env: sys::napi_env,
    _js_cb: sys::napi_value,
    context: *mut c_void,
    _data: *mut c_void,
) {
    if env.is_null() || context.is_null() {
        return; // teardown
    }
    // SAFETY: `context` is this tsfn's `Local`, live until the tsfn's finalizer.
    let local = unsafe { &*(context as *const Local) };
    let mut batch = std::mem::take(&mut *local.spare.borrow_mut());
    std::mem::swap(
        &mut local
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .slots,
        &mut batch,
    );
    let _rt = local.handle.enter();
    let mut finished = 0;
    for slot in batch.drain(..) {
        // Taken out while it runs; a late wake of a finished job finds nothing (or, when the
        // slot was reused, polls a newer job once more than needed, which futures allow).
        let Some(mut job) = local.jobs.borrow_mut().get_mut(slot).and_then(Option::take) else {
            continue;
        };
        job.unqueue();
        if job.run(env) {
            finished += 1;
            local.release(slot);
        } else if let Some(s) = local.jobs.borrow_mut().get_mut(slot) {
            *s = Some(job);
        }
    }
    *local.spare.borrow_mut() = batch;
    if finished > 0 {
        let left = local.pending.get().saturating_sub(finished);
        local.pending.set(left);
        if left == 0 {
            // SAFETY: on the JS thread with the live env; lets the process exit when idle.
            unsafe { sys::napi_unref_threadsafe_function(env, local.tsfn.get()) };
        }
    }
}

/// Env teardown: from now on no thread calls the tsfn, then it is released.
unsafe extern "C" fn close(arg: *mut c_void) {
    // SAFETY: `arg` is the `Local`, freed only by `finalize`, which Node runs after this hook.
    let local = unsafe { &*(arg as *const Local) };
    let tsfn = {
        let mut q = local
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        q.slots.clear();
        std::mem::replace(&mut q.tsfn, ptr::null_mut())
    };
    if !tsfn.is_null() {
        // SAFETY: our one thread reference, released once; Node finalizes the tsfn afterwards.
        unsafe {
            sys::napi_release_threadsafe_function(tsfn, sys::ThreadsafeFunctionReleaseMode::abort)
        };
    }
}

/// The tsfn is finalized: frees the `Local`, dropping the jobs still pending (their env is gone).
unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    let ptr = data as *const Local;
    let _ = LOCALS.try_with(|l| l.borrow_mut().retain(|p| *p != ptr));
    // SAFETY: the tsfn is gone and LOCALS no longer lists `ptr`: nothing refers to it any more.
    let local = unsafe { Box::from_raw(ptr as *mut Local) };
    let _ = catch_unwind(AssertUnwindSafe(move || {
        let _rt = local.handle.enter();
        drop(local.jobs.take());
    }));
}
