//! How values cross the boundary: scalars directly, objects and arrays as one JSON text
//! (napi's serde conversion measured 3–5× slower than JSON text plus `JSON.parse`).

use crate::errors::{self, OrThrow};
use napi::bindgen_prelude::*;
use napi::sys;
use ostro_session_core::{payload, session, SessionError};
use serde_json::{Number, Value};

/// A scalar from JS: string, finite number, boolean or null. `lib/value.js` has already refused
/// everything else.
pub struct Scalar(pub Value);

impl TypeName for Scalar {
    fn type_name() -> &'static str {
        "string | number | boolean | null"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ValidateNapiValue for Scalar {}

impl FromNapiValue for Scalar {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        let mut t = 0;
        // SAFETY: env and v come from napi for this call.
        check_status!(unsafe { sys::napi_typeof(env, v, &mut t) })?;
        let value = match t {
            sys::ValueType::napi_string => {
                Value::String(unsafe { String::from_napi_value(env, v) }?)
            }
            sys::ValueType::napi_number => number(unsafe { f64::from_napi_value(env, v) }?)
                // SAFETY: env is this call's.
                .map_err(|e| unsafe { errors::throw_raw(env, &e) })?,
            sys::ValueType::napi_boolean => Value::Bool(unsafe { bool::from_napi_value(env, v) }?),
            sys::ValueType::napi_null => Value::Null,
            _ => {
                let e = SessionError::Value(
                    "expected a string, number, boolean or null (objects and arrays cross as \
                     JSON text)"
                        .into(),
                );
                // SAFETY: env is this call's.
                return Err(unsafe { errors::throw_raw(env, &e) });
            }
        };
        Ok(Scalar(value))
    }
}

/// A finite JS number as JSON: integers stay integers.
pub fn number(n: f64) -> std::result::Result<Value, SessionError> {
    #[allow(clippy::cast_possible_truncation, clippy::float_cmp)]
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        return Ok(Value::from(n as i64));
    }
    Number::from_f64(n)
        .map(Value::Number)
        .ok_or_else(|| SessionError::Value(format!("numbers must be finite, got {n}")))
}

/// A value going to JS: absent (`undefined`), a scalar, or a container as `[jsonText]`, which
/// `lib/store.js` unwraps with `JSON.parse`.
pub enum Out {
    /// The key is absent.
    Absent,
    /// A stored scalar.
    Scalar(Value),
    /// A stored container, already encoded (no deep clone of the tree).
    Json(String),
}

impl Out {
    /// From an optional borrowed value: scalars are copied, containers encoded in place.
    pub fn of(v: Option<&Value>) -> Self {
        match v {
            None => Out::Absent,
            Some(v @ (Value::Array(_) | Value::Object(_))) => {
                Out::Json(serde_json::to_string(v).unwrap_or_else(|_| "null".into()))
            }
            Some(v) => Out::Scalar(v.clone()),
        }
    }
}

impl ToNapiValue for Out {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        // SAFETY: delegating to napi's own conversions with the same env.
        unsafe {
            match val {
                Out::Absent => <()>::to_napi_value(env, ()),
                Out::Scalar(Value::Bool(b)) => bool::to_napi_value(env, b),
                Out::Scalar(Value::Number(n)) => f64::to_napi_value(env, n.as_f64().unwrap_or(0.0)),
                Out::Scalar(Value::String(s)) => String::to_napi_value(env, s),
                Out::Scalar(_) => Null::to_napi_value(env, Null),
                Out::Json(text) => Vec::<String>::to_napi_value(env, vec![text]),
            }
        }
    }
}

impl TypeName for Out {
    fn type_name() -> &'static str {
        "Out"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

/// Parses JSON text for `key`, refusing text nested deeper than a payload may be with the
/// engine's error naming the key (serde's own recursion limit would name none). The engine's
/// `put` then checks the exact depth, the key's dot segments included.
pub fn parse_at(env: &Env, key: &str, text: &str) -> Result<Value> {
    if payload::too_deep(text, payload::MAX_DEPTH).is_some() {
        return Err(errors::throw(env, &session::depth_error(key)));
    }
    parse(text).or_throw(env)
}

/// [`parse_object`] with the depth check of [`parse_at`]; the error names the top-level key.
pub fn parse_object_at(env: &Env, text: &str) -> Result<serde_json::Map<String, Value>> {
    if let Some(key) = payload::too_deep(text, payload::MAX_DEPTH) {
        let key = key.unwrap_or_else(|| "(object)".to_owned());
        return Err(errors::throw(env, &session::depth_error(&key)));
    }
    parse_object(text).or_throw(env)
}

/// Parses JSON text produced by `lib/value.js`.
fn parse(text: &str) -> std::result::Result<Value, SessionError> {
    serde_json::from_str(text).map_err(|e| SessionError::Value(format!("invalid JSON value: {e}")))
}

/// Parses JSON text that must be an object.
fn parse_object(text: &str) -> std::result::Result<serde_json::Map<String, Value>, SessionError> {
    match parse(text)? {
        Value::Object(m) => Ok(m),
        other => Err(SessionError::Value(format!(
            "expected JSON text of an object, got {}",
            match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        ))),
    }
}
