//! The redis driver's connection to a single plain server (TCP or unix socket), driven from
//! libuv's loop on the JS thread.
//!
//! The socket is non-blocking and registered with the env's loop through a `uv_poll` handle.
//! A command is written from the JS thread (commands issued while replies are being settled
//! go out in one write); replies are read when libuv reports the socket readable, split into
//! RESP frames, matched with the FIFO of pending commands, and their Promises are settled in
//! the same callback (`runtime::on_js_thread`): no completion crosses a thread. Only the
//! connect (DNS and TCP) runs on the runtime's I/O thread, once per connection.
//!
//! The core keeps every rule (scripts, retries, timeouts, error mapping): this carries packed
//! commands and raw replies ([`ExternalRedis`]). Off this env's JS thread, or once the env is
//! torn down, it is not available and the core uses its own tokio connection.

use crate::runtime;
use napi::sys;
use ostro_session_core::handlers::redis::{ExternalRedis, RedisAddr, RedisEndpoint};
use redis::{RedisError, RedisFuture, RedisResult, Value};
use std::alloc::Layout;
use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::future::Future;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::ptr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

// libuv, as exported by the Node binary.
extern "C" {
    fn uv_handle_size(kind: c_int) -> usize;
    fn uv_poll_init(lp: *mut c_void, handle: *mut c_void, fd: c_int) -> c_int;
    fn uv_poll_start(
        handle: *mut c_void,
        events: c_int,
        cb: unsafe extern "C" fn(*mut c_void, c_int, c_int),
    ) -> c_int;
    fn uv_close(handle: *mut c_void, cb: unsafe extern "C" fn(*mut c_void));
    fn uv_unref(handle: *mut c_void);
}

/// `UV_POLL` in `uv_handle_type`.
const UV_POLL: c_int = 8;
const UV_READABLE: c_int = 1;
const UV_WRITABLE: c_int = 2;
/// Bytes read per `read` call at most.
const READ_CHUNK: usize = 64 * 1024;

/// The connection of one handler in one env.
pub struct UvRedis {
    env: sys::napi_env,
    lp: *mut c_void,
    me: Weak<UvRedis>,
    endpoint: RedisEndpoint,
    state: Mutex<State>,
    /// The boxed `Weak` the env cleanup hook holds (freed by the hook, or by `Drop`).
    hook: *mut Weak<UvRedis>,
}

// SAFETY: the raw env, loop and handle pointers are used only on the env's JS thread (checked
// with `runtime::owns` before every use); the rest is behind the mutex.
unsafe impl Send for UvRedis {}
// SAFETY: as above.
unsafe impl Sync for UvRedis {}

#[derive(Default)]
struct State {
    link: Link,
    /// Bumped per connect attempt, so a late connect result for an abandoned one is dropped.
    attempt: u64,
    /// Packed commands not yet written, from `wpos`.
    wbuf: Vec<u8>,
    wpos: usize,
    /// Replies read, not yet parsed: `rbuf[rstart..rend]`.
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    pending: VecDeque<Pending>,
    /// Queued for the end of the current libuv callback (see `BATCH`).
    dirty: bool,
    /// The env is gone: no libuv calls any more.
    closed: bool,
}

#[derive(Default)]
enum Link {
    #[default]
    Idle,
    Connecting,
    /// Connected on the I/O thread, not yet registered with the loop.
    Ready(Sock),
    Open {
        sock: Sock,
        handle: *mut c_void,
        writable: bool,
    },
}

enum Sock {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Sock {
    fn fd(&self) -> RawFd {
        match self {
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Unix(s) => s.as_raw_fd(),
        }
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => (&*s).read(buf),
            Sock::Unix(s) => (&*s).read(buf),
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => (&*s).write(buf),
            Sock::Unix(s) => (&*s).write(buf),
        }
    }
}

/// One command (or pipeline) waiting for its replies.
struct Pending {
    /// Replies to drop first (a transaction's `MULTI`/`QUEUED`).
    skip: usize,
    /// Replies to hand over.
    want: usize,
    values: Vec<Value>,
    /// `None` for the handshake (`AUTH`, `SELECT`): an error there fails the connection.
    slot: Option<Arc<Slot>>,
}

#[derive(Default)]
struct Slot {
    inner: Mutex<SlotInner>,
}

#[derive(Default)]
struct SlotInner {
    result: Option<RedisResult<Vec<Value>>>,
    waker: Option<Waker>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn complete(&self, r: RedisResult<Vec<Value>>) {
        let waker = {
            let mut s = self.lock();
            s.result = Some(r);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn wake(&self) {
        let waker = self.lock().waker.take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

thread_local! {
    /// Set while a libuv callback of this module runs (settling included): commands are
    /// buffered, and `DIRTY` is written once at its end.
    static BATCH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static DIRTY: std::cell::RefCell<Vec<Arc<UvRedis>>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn io_error(kind: io::ErrorKind, msg: &'static str) -> RedisError {
    RedisError::from(io::Error::new(kind, msg))
}

impl UvRedis {
    /// A connection for `endpoint` in the env of the current call (on its JS thread).
    pub fn new(env: &napi::Env, endpoint: RedisEndpoint) -> Option<Arc<Self>> {
        let env = env.raw();
        let mut lp = ptr::null_mut();
        // SAFETY: `env` is the live env of the current call.
        if unsafe { sys::napi_get_uv_event_loop(env, &mut lp) } != sys::Status::napi_ok
            || lp.is_null()
        {
            return None;
        }
        let me = Arc::new_cyclic(|me: &Weak<UvRedis>| UvRedis {
            env,
            lp: lp.cast(),
            me: me.clone(),
            endpoint,
            state: Mutex::new(State::default()),
            hook: Box::into_raw(Box::new(me.clone())),
        });
        // SAFETY: on the JS thread; `hook` stays valid until the hook runs or is removed.
        let status = unsafe { sys::napi_add_env_cleanup_hook(env, Some(cleanup), me.hook.cast()) };
        if status != sys::Status::napi_ok {
            return None; // Drop frees the box (the hook was not added: removal is a no-op)
        }
        Some(me)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn on_loop_thread(&self) -> bool {
        runtime::owns(self.env)
    }

    /// Queues a packed command (or pipeline) and returns the slot its replies go to.
    fn submit(&self, pack: impl FnOnce(&mut Vec<u8>), skip: usize, want: usize) -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        if !self.on_loop_thread() {
            slot.complete(Err(io_error(
                io::ErrorKind::NotConnected,
                "redis connection used off its thread",
            )));
            return slot;
        }
        let mut st = self.lock();
        if st.closed {
            drop(st);
            slot.complete(Err(io_error(
                io::ErrorKind::NotConnected,
                "redis connection closed",
            )));
            return slot;
        }
        if matches!(st.link, Link::Idle) {
            self.start_connect(&mut st);
        }
        pack(&mut st.wbuf);
        st.pending.push_back(Pending {
            skip,
            want,
            values: Vec::with_capacity(want),
            slot: Some(Arc::clone(&slot)),
        });
        if matches!(st.link, Link::Open { .. }) {
            if BATCH.with(std::cell::Cell::get) {
                if !st.dirty {
                    st.dirty = true;
                    if let Some(me) = self.me.upgrade() {
                        DIRTY.with(|d| d.borrow_mut().push(me));
                    }
                }
            } else {
                self.flush(&mut st);
            }
        }
        slot
    }

    /// Starts connecting on the runtime's I/O thread; the handshake goes first in the buffer.
    fn start_connect(&self, st: &mut State) {
        st.link = Link::Connecting;
        st.attempt += 1;
        st.wbuf.clear();
        st.wpos = 0;
        let ep = &self.endpoint;
        if let Some(pw) = &ep.password {
            let mut c = redis::cmd("AUTH");
            if let Some(u) = &ep.username {
                c.arg(u);
            }
            c.arg(pw);
            self.handshake(st, &c);
        }
        if ep.db != 0 {
            let mut c = redis::cmd("SELECT");
            c.arg(ep.db);
            self.handshake(st, &c);
        }
        let attempt = st.attempt;
        let weak = self.me.clone();
        let ep = self.endpoint.clone();
        let task = async move {
            let r = match tokio::time::timeout(ep.connect_timeout, connect(&ep.addr)).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
            };
            if let Some(me) = weak.upgrade() {
                me.connected(attempt, r);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(task);
            }
            Err(_) => {
                let e = io_error(io::ErrorKind::NotConnected, "no runtime to connect from");
                self.fail(st, &e);
            }
        }
    }

    fn handshake(&self, st: &mut State, c: &redis::Cmd) {
        c.write_packed_command(&mut st.wbuf);
        st.pending.push_back(Pending {
            skip: 0,
            want: 1,
            values: Vec::with_capacity(1),
            slot: None,
        });
    }

    /// The connect's result, on the I/O thread: the socket waits for the JS thread to
    /// register it (woken pending commands do, in `Reply::poll`).
    fn connected(&self, attempt: u64, r: io::Result<Sock>) {
        let mut st = self.lock();
        if st.attempt != attempt || !matches!(st.link, Link::Connecting) || st.closed {
            return;
        }
        match r {
            Ok(sock) => {
                st.link = Link::Ready(sock);
                for p in &st.pending {
                    if let Some(s) = &p.slot {
                        s.wake();
                    }
                }
            }
            Err(e) => {
                let e = RedisError::from(e);
                self.fail(&mut st, &e);
            }
        }
    }

    /// Registers a connected socket with the loop (on the JS thread) and writes what waits.
    fn register_if_ready(&self) {
        let mut st = self.lock();
        if !matches!(st.link, Link::Ready(_)) || st.closed || !self.on_loop_thread() {
            return;
        }
        let Link::Ready(sock) = std::mem::take(&mut st.link) else {
            return;
        };
        let handle = match poll_handle(self.lp, sock.fd(), self.me.clone()) {
            Ok(h) => h,
            Err(e) => {
                let e = RedisError::from(e);
                self.fail(&mut st, &e);
                return;
            }
        };
        st.link = Link::Open {
            sock,
            handle,
            writable: false,
        };
        self.flush(&mut st);
    }

    /// Writes what the buffer holds; on `EAGAIN`, waits for the socket to be writable.
    fn flush(&self, st: &mut State) {
        st.dirty = false;
        let (handle, writable) = match &st.link {
            Link::Open {
                handle, writable, ..
            } => (*handle, *writable),
            _ => return,
        };
        let result = match &st.link {
            Link::Open { sock, .. } => write_out(sock, &st.wbuf, &mut st.wpos),
            _ => return,
        };
        if let Err(e) = result {
            let e = RedisError::from(e);
            self.fail(st, &e);
            return;
        }
        let done = st.wpos >= st.wbuf.len();
        if done {
            st.wbuf.clear();
            st.wpos = 0;
        }
        if writable == done {
            // SAFETY: the handle is open (it is closed only together with `link`), on the
            // loop's thread (every caller of `flush` is).
            let events = if done {
                UV_READABLE
            } else {
                UV_READABLE | UV_WRITABLE
            };
            let rc = unsafe { uv_poll_start(handle, events, on_poll) };
            if let Link::Open { writable: w, .. } = &mut st.link {
                *w = !done;
            }
            if rc != 0 {
                let e = io_error(io::ErrorKind::Other, "uv_poll_start failed");
                self.fail(st, &e);
            }
        }
    }

    /// Handles a libuv event for the socket (on the JS thread).
    fn on_event(&self, status: c_int, events: c_int) {
        let mut st = self.lock();
        if !matches!(st.link, Link::Open { .. }) {
            return;
        }
        if status < 0 {
            let e = io_error(io::ErrorKind::ConnectionReset, "redis socket error");
            self.fail(&mut st, &e);
            return;
        }
        if events & UV_WRITABLE != 0 {
            self.flush(&mut st);
        }
        if events & UV_READABLE != 0 {
            self.read(&mut st);
        }
    }

    fn read(&self, st: &mut State) {
        loop {
            if st.rbuf.len() - st.rend < READ_CHUNK / 4 {
                if st.rstart > 0 {
                    st.rbuf.copy_within(st.rstart..st.rend, 0);
                    st.rend -= st.rstart;
                    st.rstart = 0;
                }
                if st.rbuf.len() - st.rend < READ_CHUNK / 4 {
                    let len = st.rbuf.len() + READ_CHUNK;
                    st.rbuf.resize(len, 0);
                }
            }
            let Link::Open { sock, .. } = &st.link else {
                return;
            };
            let room = st.rbuf.len() - st.rend;
            let end = st.rend;
            let n = match sock.read(&mut st.rbuf[end..]) {
                Ok(0) => {
                    let e = io_error(
                        io::ErrorKind::ConnectionReset,
                        "redis closed the connection",
                    );
                    self.fail(st, &e);
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    let e = RedisError::from(e);
                    self.fail(st, &e);
                    return;
                }
            };
            st.rend += n;
            if !self.dispatch(st) {
                return;
            }
            if n < room {
                break; // drained what the kernel had
            }
        }
    }

    /// Parses the complete frames read so far and hands them to the pending commands. False
    /// when the connection failed.
    fn dispatch(&self, st: &mut State) -> bool {
        while st.rstart < st.rend {
            let frame = &st.rbuf[st.rstart..st.rend];
            let len = match frame_len(frame) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(()) => {
                    let e = io_error(io::ErrorKind::InvalidData, "redis sent an invalid reply");
                    self.fail(st, &e);
                    return false;
                }
            };
            let parsed = redis::parse_redis_value(&frame[..len]);
            st.rstart += len;
            let value = match parsed {
                Ok(v) => v,
                Err(e) => {
                    self.fail(st, &e);
                    return false;
                }
            };
            let Some(p) = st.pending.front_mut() else {
                let e = io_error(
                    io::ErrorKind::InvalidData,
                    "redis sent a reply nobody asked for",
                );
                self.fail(st, &e);
                return false;
            };
            if p.skip > 0 {
                p.skip -= 1;
                continue;
            }
            if p.slot.is_none() {
                st.pending.pop_front();
                if let Value::ServerError(err) = value {
                    // The login or SELECT was refused: every queued command fails with it.
                    let e = RedisError::from(err);
                    self.fail(st, &e);
                    return false;
                }
                continue;
            }
            p.values.push(value);
            if p.values.len() >= p.want {
                if let Some(p) = st.pending.pop_front() {
                    if let Some(slot) = p.slot {
                        slot.complete(Ok(p.values));
                    }
                }
            }
        }
        if st.rstart == st.rend {
            st.rstart = 0;
            st.rend = 0;
        }
        true
    }

    /// Drops the connection: every pending command fails with `e`; the next one reconnects.
    fn fail(&self, st: &mut State, e: &RedisError) {
        if let Link::Open { handle, .. } = std::mem::take(&mut st.link) {
            // SAFETY: on the loop's thread (an open link is only touched there); the close
            // callback frees the handle. The socket (dropped with the link above, after the
            // handle stopped polling in uv_close) closes its fd.
            unsafe { uv_close(handle, on_close) };
        }
        st.link = Link::Idle;
        st.wbuf.clear();
        st.wpos = 0;
        st.rstart = 0;
        st.rend = 0;
        for p in std::mem::take(&mut st.pending) {
            if let Some(slot) = p.slot {
                slot.complete(Err(e.clone()));
            }
        }
    }

    /// Env teardown: closes the connection; from now on the core uses its own.
    fn shut(&self) {
        let mut st = self.lock();
        let e = io_error(io::ErrorKind::NotConnected, "the env is shutting down");
        self.fail(&mut st, &e);
        st.closed = true;
    }

    fn reply(&self, slot: Arc<Slot>) -> Reply<'_> {
        Reply { conn: self, slot }
    }
}

impl Drop for UvRedis {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        let on_thread = !st.closed && runtime::owns(self.env);
        if on_thread {
            if let Link::Open { handle, .. } = std::mem::take(&mut st.link) {
                // SAFETY: on the loop's thread; see `fail`.
                unsafe { uv_close(handle, on_close) };
            }
            // SAFETY: on the JS thread with the live env; removes the hook added in `new`,
            // which then never runs, so its box is freed here.
            unsafe {
                sys::napi_remove_env_cleanup_hook(self.env, Some(cleanup), self.hook.cast());
                drop(Box::from_raw(self.hook));
            }
        } else if let Link::Open { sock, .. } = std::mem::take(&mut st.link) {
            // Not on the loop's thread: the handle cannot be closed here. Its callback finds
            // no connection and closes it; keep the fd open until then.
            std::mem::forget(sock);
        }
    }
}

/// The future of one command's replies.
struct Reply<'a> {
    conn: &'a UvRedis,
    slot: Arc<Slot>,
}

impl Future for Reply<'_> {
    type Output = RedisResult<Vec<Value>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.conn.register_if_ready();
        let mut s = self.slot.lock();
        if let Some(r) = s.result.take() {
            return Poll::Ready(r);
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl ExternalRedis for UvRedis {
    fn available(&self) -> bool {
        self.on_loop_thread() && !self.lock().closed
    }

    fn request<'a>(&'a self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        let slot = self.submit(|b| cmd.write_packed_command(b), 0, 1);
        let reply = self.reply(slot);
        Box::pin(async move {
            let mut v = reply.await?;
            v.pop()
                .ok_or_else(|| io_error(io::ErrorKind::InvalidData, "no reply"))
        })
    }

    fn request_pipeline<'a>(
        &'a self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let slot = self.submit(
            |b| b.extend_from_slice(&pipeline.get_packed_pipeline()),
            offset,
            count,
        );
        Box::pin(self.reply(slot))
    }

    fn close(&self) {
        if !self.on_loop_thread() {
            return;
        }
        let mut st = self.lock();
        if st.closed {
            return;
        }
        let e = io_error(io::ErrorKind::NotConnected, "redis connection closed");
        self.fail(&mut st, &e);
    }
}

/// Connects (on the runtime's I/O thread): a non-blocking socket for the loop.
async fn connect(addr: &RedisAddr) -> io::Result<Sock> {
    match addr {
        RedisAddr::Tcp(host, port) => {
            let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            s.set_nodelay(true)?;
            // into_std keeps the socket non-blocking and takes it off tokio's reactor.
            Ok(Sock::Tcp(s.into_std()?))
        }
        RedisAddr::Unix(path) => {
            let s = tokio::net::UnixStream::connect(path).await?;
            Ok(Sock::Unix(s.into_std()?))
        }
    }
}

/// A started, unreferenced `uv_poll` handle for `fd` (readable), calling back `on_poll` with
/// `conn` as its data.
fn poll_handle(lp: *mut c_void, fd: RawFd, conn: Weak<UvRedis>) -> io::Result<*mut c_void> {
    // SAFETY: uv_handle_size is a pure query.
    let size = unsafe { uv_handle_size(UV_POLL) };
    let layout = Layout::from_size_align(size.max(8), 16)
        .map_err(|_| io::Error::other("bad uv handle layout"))?;
    // SAFETY: a non-zero size.
    let handle = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<c_void>();
    if handle.is_null() {
        return Err(io::Error::other("out of memory"));
    }
    // SAFETY: `handle` is a zeroed allocation of the handle's size; `lp` is this env's loop
    // and we are on its thread (callers check). `data` is the first field of every handle.
    unsafe {
        if uv_poll_init(lp, handle, fd) != 0 {
            std::alloc::dealloc(handle.cast(), layout);
            return Err(io::Error::other("uv_poll_init failed"));
        }
        *handle.cast::<*const UvRedis>() = Weak::into_raw(conn);
        uv_unref(handle);
        if uv_poll_start(handle, UV_READABLE, on_poll) != 0 {
            uv_close(handle, on_close);
            return Err(io::Error::other("uv_poll_start failed"));
        }
    }
    Ok(handle)
}

/// libuv: the socket is readable or writable.
unsafe extern "C" fn on_poll(handle: *mut c_void, status: c_int, events: c_int) {
    // SAFETY: `data` holds the `Weak` put there by `poll_handle`, released only by `on_close`.
    let data = unsafe { *handle.cast::<*const UvRedis>() };
    // SAFETY: as above; borrowed, not consumed.
    let weak = std::mem::ManuallyDrop::new(unsafe { Weak::from_raw(data) });
    let Some(conn) = weak.upgrade() else {
        // The connection is gone: stop polling.
        // SAFETY: on the loop's thread, from the handle's own callback.
        unsafe { uv_close(handle, on_close) };
        return;
    };
    BATCH.with(|b| b.set(true));
    runtime::on_js_thread(|| conn.on_event(status, events));
    // Commands issued while the replies were settled go out now, in one write each.
    let dirty = DIRTY.with(|d| std::mem::take(&mut *d.borrow_mut()));
    BATCH.with(|b| b.set(false));
    for c in dirty {
        let mut st = c.lock();
        if st.dirty {
            c.flush(&mut st);
        }
    }
}

/// libuv: the handle is closed; frees it and its `Weak`.
unsafe extern "C" fn on_close(handle: *mut c_void) {
    // SAFETY: `data` is the `Weak` from `poll_handle` (or null when init failed before it
    // was set), released once, here.
    unsafe {
        let data = *handle.cast::<*const UvRedis>();
        if !data.is_null() {
            drop(Weak::from_raw(data));
        }
        let size = uv_handle_size(UV_POLL);
        if let Ok(layout) = Layout::from_size_align(size.max(8), 16) {
            std::alloc::dealloc(handle.cast(), layout);
        }
    }
}

/// Env teardown: closes the connection's handle while the loop can still run its callback.
unsafe extern "C" fn cleanup(arg: *mut c_void) {
    // SAFETY: `arg` is the boxed `Weak` from `UvRedis::new`; the hook runs once and frees it.
    let weak = unsafe { Box::from_raw(arg.cast::<Weak<UvRedis>>()) };
    if let Some(conn) = weak.upgrade() {
        // Marks it closed, so that its `Drop` neither removes the hook nor frees the box.
        conn.shut();
    }
}

/// Writes from `buf[*pos..]` until done or `EAGAIN`.
fn write_out(sock: &Sock, buf: &[u8], pos: &mut usize) -> io::Result<()> {
    while *pos < buf.len() {
        match sock.write(&buf[*pos..]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
            Ok(n) => *pos += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The length of the complete RESP frame at the start of `buf`; `Ok(None)` when more bytes
/// are needed, `Err` for bytes that are not RESP.
fn frame_len(buf: &[u8]) -> Result<Option<usize>, ()> {
    let mut pos = 0usize;
    let mut left = 1usize;
    while left > 0 {
        left -= 1;
        let Some(nl) = buf
            .get(pos..)
            .and_then(|b| b.iter().position(|&c| c == b'\n'))
        else {
            return Ok(None);
        };
        let line_end = pos + nl; // index of '\n'
        if line_end == pos || buf.get(line_end - 1) != Some(&b'\r') {
            return Err(());
        }
        let kind = buf[pos];
        let line = &buf[pos + 1..line_end - 1];
        pos = line_end + 1;
        match kind {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {}
            b'$' | b'=' | b'!' => {
                let n = int(line)?;
                if n >= 0 {
                    let n = usize::try_from(n).map_err(|_| ())?;
                    let end = pos
                        .checked_add(n)
                        .and_then(|e| e.checked_add(2))
                        .ok_or(())?;
                    if buf.len() < end {
                        return Ok(None);
                    }
                    pos = end;
                }
            }
            b'*' | b'~' | b'>' => {
                let n = int(line)?;
                if n > 0 {
                    left = left
                        .checked_add(usize::try_from(n).map_err(|_| ())?)
                        .ok_or(())?;
                }
            }
            b'%' | b'|' => {
                let n = int(line)?;
                if n > 0 {
                    let n = usize::try_from(n)
                        .map_err(|_| ())?
                        .checked_mul(2)
                        .ok_or(())?;
                    // An attribute map is followed by the value it annotates.
                    let n = if kind == b'|' { n + 1 } else { n };
                    left = left.checked_add(n).ok_or(())?;
                }
            }
            _ => return Err(()),
        }
    }
    Ok(Some(pos))
}

fn int(line: &[u8]) -> Result<i64, ()> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(())
}
