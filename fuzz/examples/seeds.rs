//! Writes the seed corpora under `fuzz/corpus/<target>/`: real payloads (current and 1.x),
//! real `Cookie` headers, and values sealed by the cookie driver under the targets' keys.
//!
//! `cargo run --example seeds` from `fuzz/`. The output is deterministic except for the
//! sealed values (random nonces); rerun it only when the formats change.

use ostro_session_core::clock::ManualClock;
use ostro_session_core::crypto::{sign_cookie, Cipher};
use ostro_session_core::handlers::cookie::CookieCodec;
use ostro_session_fuzz::{encode_uri_component, KEY, MINUTES, NAME, NOW, OLD_KEY};
use std::fs;
use std::path::Path;
use std::sync::Arc;

/// The ~1 KB session of bench/lib/payload.js, as stored.
const BENCH_SESSION: &str = r#"{"_token":"Xk3pQ9vLm2Rt8WbN4yHs6JdC1fGa7ZeU0oIcVqTn","_previous":{"url":"https://shop.example.com/catalog/shoes?page=2&sort=price"},"user":{"id":48213,"name":"Ada Lovelace","email":"ada@example.com","roles":["customer","beta"],"locale":"en-GB","verified":true},"cart":{"currency":"EUR","items":[{"sku":"SHOE-RUN-42","name":"Trail runner","qty":1,"price":129.9},{"sku":"SOCK-WOOL-M","name":"Merino socks","qty":3,"price":14.5},{"sku":"CAP-SUN-01","name":"Sun cap","qty":1,"price":19},{"sku":"BAG-DAY-20","name":"Day pack 20 l","qty":1,"price":79}],"coupon":null},"prefs":{"theme":"dark","newsletter":false,"currency":"EUR","lastSearch":"waterproof trail shoes"},"counter":0,"_flash":{"old":[],"new":["status"]},"status":"Profile updated.","recent":[1041,1093,2210,2291,3307,3318,4011,5123]}"#;

/// What @ostro/session 1.x wrote (__test__/middleware.test.js, store.test.js, ostro-app.test.js).
const V1_PAYLOADS: &[(&str, &str)] = &[
    (
        "v1-middleware",
        r#"{"__token":"abcdefghijklmnopqrstuvwxyz0123-xo75IyYRhcHcZFo1LjPQB7-Gx-g","__flash":{"__old":[],"__new":[]},"cartItem":"pear","user":{"teams":["red"]}}"#,
    ),
    (
        "v1-store-flash",
        r#"{"__token":"v1token","__flash":{"__old":[],"__new":["notice"]},"notice":"hello","cartItem":"pear","counter":3}"#,
    ),
    (
        "v1-old-flash",
        r#"{"__token":"t","__flash":{"__old":["a"],"__new":["b"]},"a":1,"b":{"x":[1,2]}}"#,
    ),
    (
        "v1-both-tokens",
        r#"{"_token":null,"__token":"t1","_flash":{"old":["k"],"new":[]},"__flash":{"__old":"not an array","__new":null},"k":true}"#,
    ),
    (
        "v1-bad-flash",
        r#"{"__flash":7,"__token":{"nested":["token"]}}"#,
    ),
];

fn payload_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = vec![
        ("bench-session".into(), BENCH_SESSION.into()),
        ("laravel-fresh".into(), br#"{"_token":"Q9vLm2Rt8WbN4yHs6JdC1fGa7ZeU0oIcVqTnXk3p"}"#.to_vec()),
        (
            "laravel-flash-input".into(),
            br#"{"_token":"t","_old_input":{"email":"a@b.c","tags":["x","y"]},"_flash":{"old":["_old_input","errors"],"new":[]},"errors":{"default":{"email":["The email field is required."]}},"url":{"intended":"/home"}}"#.to_vec(),
        ),
        (
            "dot-keys".into(),
            br#"{"a.b":1,"a":{"b":2,"c":[0,{"d":null}]},"":"empty key","0":[[],{}],"\u00e9t\u00e9":"\u2603"}"#.to_vec(),
        ),
        (
            "numbers".into(),
            br#"{"i":-0,"f":1.5e300,"big":18446744073709551616,"neg":-9223372036854775809,"e":1E-7,"z":0.0}"#.to_vec(),
        ),
        ("strings".into(), br#"{"s":"\"{[\\","u":"\ud83d\ude00","lone":"\ud800","ctl":"\u0000\n\t"}"#.to_vec()),
        ("duplicate-keys".into(), br#"{"a":1,"b":2,"a":{"x":3}}"#.to_vec()),
        ("whitespace".into(), b" {\n \"a\" : [ 1 , 2 ] ,\r\n\t\"b\" :{ } }\n ".to_vec()),
        ("not-object".into(), b"[1,2,3]".to_vec()),
        ("truncated".into(), br#"{"a":{"b":[1,2"#.to_vec()),
        ("trailing".into(), br#"{"a":1}}"#.to_vec()),
        ("invalid-utf8".into(), b"{\"a\":\"\xff\xfe\",\"b\":\"\xc3\xa9\"}".to_vec()),
        ("sealed-looking".into(), b"v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_vec()),
    ];
    for (name, p) in V1_PAYLOADS {
        out.push(((*name).into(), p.as_bytes().to_vec()));
    }
    // The depth limit: 64 levels decode, 65 do not; brackets inside strings do not count.
    let nest = |n: usize| format!("{}{}", "{\"a\":".repeat(n - 1) + "{", "}".repeat(n));
    out.push(("depth-64".into(), nest(64).into_bytes()));
    out.push(("depth-65".into(), nest(65).into_bytes()));
    out.push((
        "depth-arrays-64".into(),
        format!("{{\"a\":{}{}}}", "[".repeat(63), "]".repeat(63)).into_bytes(),
    ));
    out.push((
        "brackets-in-strings".into(),
        format!("{{\"a\":\"{}\",\"b\\\"[\":{{}}}}", "[{".repeat(80)).into_bytes(),
    ));
    out
}

fn header_seeds() -> Vec<(String, Vec<u8>)> {
    let id = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd";
    let legacy = "Ab-_c1dE2fG3hI4jK5lM6nO7pQ8rS9tU0vWx-y_Z";
    let cur = encode_uri_component(&sign_cookie(id, KEY));
    let old = encode_uri_component(&sign_cookie(legacy, OLD_KEY));
    let mut out: Vec<(String, Vec<u8>)> = vec![
        ("signed".into(), format!("{NAME}={cur}")),
        (
            "browser".into(),
            format!("_ga=GA1.2.1234567890.1700000000; {NAME}={cur}; XSRF-TOKEN=eyJpdiI6IjEifQ%3D%3D; theme=dark"),
        ),
        ("legacy-previous-key".into(), format!("{NAME}={old}; lang=en")),
        ("raw-signature".into(), format!("{NAME}={}", sign_cookie(id, KEY))),
        ("quoted".into(), format!("a=\"x y\"; {NAME}=\"{cur}\"")),
        ("duplicate".into(), format!("{NAME}={cur}; {NAME}={cur}")),
        ("bad-encoding".into(), format!("{NAME}=s%3A%E0%A4%A; b=%zz")),
        ("garbage".into(), format!("{NAME}=\"s:\"; other=1")),
        ("empty".into(), format!("{NAME}=")),
        ("malformed".into(), format!(";;= ;{NAME};=={NAME}==;{NAME} = {cur} ;")),
        ("spaces-in-name".into(), "my shop_session=v; my shop_session =w".into()),
        ("utf8-escapes".into(), format!("{NAME}=%C3%A9%E2%82%AC%F0%9F%98%80%ED%A0%80%C0%AF")),
        ("whitespace".into(), format!("\t{NAME}\u{a0}=\u{feff}{cur}\u{3000};\u{85}x=1")),
    ]
    .into_iter()
    .map(|(n, h)| (n, h.into_bytes()))
    .collect();
    // Latin1 bytes as a client may send them (Node reads each byte as one character).
    let mut latin1 = format!("{NAME}=caf").into_bytes();
    latin1.extend_from_slice(b"\xe9; \xa0x\xa0=\xff\x85; ");
    out.push(("latin1-bytes".into(), latin1));
    // A browser-sized header: 4 KB of trackers around the cookie.
    let trackers: String = (0..60)
        .map(|i| format!("_t{i}={}; ", "x".repeat(50)))
        .collect();
    out.push(("4kb".into(), format!("{trackers}{NAME}={cur}").into_bytes()));
    out.push(("separators".into(), ";=".repeat(200).into_bytes()));
    out
}

fn sealed_seeds() -> Vec<(String, Vec<u8>)> {
    let clock = Arc::new(ManualClock::new(NOW));
    let codec = |keys: &[&str]| {
        let cipher = Arc::new(Cipher::new(keys).expect("keys"));
        CookieCodec::new(NAME, cipher, MINUTES, Some(clock.clone())).expect("codec")
    };
    let current = codec(&[KEY]);
    let old = codec(&[OLD_KEY]);
    let id = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd";
    let legacy = "Ab-_c1dE2fG3hI4jK5lM6nO7pQ8rS9tU0vWx-y_Z";
    let mut out = vec![
        (
            "sealed-current".to_owned(),
            current.seal(id, BENCH_SESSION).expect("seal"),
        ),
        (
            "sealed-previous-key".to_owned(),
            old.seal(id, r#"{"_token":"t"}"#).expect("seal"),
        ),
        (
            "sealed-legacy-id".to_owned(),
            current.seal(legacy, "{}").expect("seal"),
        ),
        (
            "sealed-empty-payload".to_owned(),
            current.seal(id, "").expect("seal"),
        ),
    ];
    // Plaintexts the codec never writes, sealed properly: the parse after a successful open.
    let cipher = Cipher::new(&[KEY]).expect("keys");
    for (name, plain) in [
        ("plain-bad-expiry", format!("soon.{id}.{{}}")),
        ("plain-expired", format!("{}.{id}.{{}}", NOW - 1)),
        ("plain-no-payload", format!("{}.{id}", NOW + 1000)),
        (
            "plain-bad-id",
            format!("{}.../../etc/passwd.{{}}", NOW + 1000),
        ),
        ("plain-plus-expiry", format!("+{}.{id}.x", NOW + 1000)),
    ] {
        out.push((
            name.to_owned(),
            cipher
                .seal(plain.as_bytes(), NAME.as_bytes())
                .expect("seal"),
        ));
    }
    let mut out: Vec<(String, Vec<u8>)> =
        out.into_iter().map(|(n, v)| (n, v.into_bytes())).collect();
    out.push(("not-utf8-plain".into(), {
        let v = cipher.seal(b"\xff\xfe.x", NAME.as_bytes()).expect("seal");
        v.into_bytes()
    }));
    out.push(("prefix-only".into(), b"v1.".to_vec()));
    out.push((
        "padded".into(),
        b"v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==".to_vec(),
    ));
    out
}

fn write(target: &str, seeds: Vec<(String, Vec<u8>)>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    let n = seeds.len();
    for (name, bytes) in seeds {
        fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
    }
    println!("{target}: {n} seeds in {}", dir.display());
}

fn main() {
    write("payload_decode", payload_seeds());
    write("cookie_header", header_seeds());
    write("cookie_open", sealed_seeds());
}
