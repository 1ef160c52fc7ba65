//! Reading request bodies the way the original's FastAPI/pydantic models did (docs/protocol.md#get-the-puzzle–docs/protocol.md#submit-a-best-hash-after-a-timeout):
//! a JSON syntax error is a 422 before authentication; field errors are a 422 whose `detail` is
//! a list of `{type, loc, msg, input, ctx?}`; a body too deeply nested to parse is a 400.

use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::puzzle::{self, MAX_NONCE, MAX_VISITOR_ID_LEN};
use crate::service::Solution;

/// Parses a body as JSON. `Ok(None)` for an empty body (reported after authentication).
pub(crate) fn parse_json(body: &[u8]) -> Result<Option<Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.to_string().contains("recursion limit") => {
            Err(ApiError::bad_request("There was an error parsing the body"))
        }
        Err(e) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "detail": [{
                "type": "json_invalid",
                "loc": ["body", e.column()],
                "msg": "JSON decode error",
                "input": {},
                "ctx": { "error": e.to_string() },
            }]}),
        )),
    }
}

/// Collects field errors, then reports them all at once.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    errors: Vec<Value>,
}

fn error(
    kind: &str,
    field: &str,
    msg: impl Into<String>,
    input: &Value,
    ctx: Option<Value>,
) -> Value {
    let mut e = json!({ "type": kind, "loc": ["body", field], "msg": msg.into(), "input": input });
    if let Some(ctx) = ctx {
        e["ctx"] = ctx;
    }
    e
}

impl<'a> Fields<'a> {
    /// The body must be a JSON object.
    fn of(body: Option<&'a Value>) -> Result<Self, ApiError> {
        match body {
            None => Err(unprocessable(vec![
                json!({ "type": "missing", "loc": ["body"], "msg": "Field required", "input": null }),
            ])),
            Some(Value::Object(object)) => Ok(Self {
                object,
                errors: Vec::new(),
            }),
            Some(other) => Err(unprocessable(vec![json!({
                "type": "model_attributes_type",
                "loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "input": other,
            })])),
        }
    }

    fn get(&mut self, field: &str) -> Option<&'a Value> {
        let value = self.object.get(field);
        if value.is_none() {
            self.errors.push(error(
                "missing",
                field,
                "Field required",
                &Value::Object(self.object.clone()),
                None,
            ));
        }
        value
    }

    fn string(&mut self, field: &str, max_len: usize) -> Option<&'a str> {
        let value = self.get(field)?;
        let Some(text) = value.as_str() else {
            self.errors.push(error(
                "string_type",
                field,
                "Input should be a valid string",
                value,
                None,
            ));
            return None;
        };
        if text.chars().count() > max_len {
            self.errors.push(error(
                "string_too_long",
                field,
                format!("String should have at most {max_len} characters"),
                value,
                Some(json!({ "max_length": max_len })),
            ));
            return None;
        }
        Some(text)
    }

    /// An integer in `lo..=hi`, accepting pydantic's lax forms: `5`, `5.0`, `"5"`.
    fn integer(&mut self, field: &str, lo: u64, hi: u64) -> Option<u64> {
        let value = self.get(field)?;
        let number = self.whole_number(field, value)?;
        self.within(field, value, number, lo, hi)
    }

    /// `value` as an exact whole number, or `None` with the reason recorded.
    fn whole_number(&mut self, field: &str, value: &Value) -> Option<i128> {
        let Some(number) = lax_number(value) else {
            let (kind, msg) = match value {
                Value::String(_) => (
                    "int_parsing",
                    "Input should be a valid integer, unable to parse string as an integer",
                ),
                _ => ("int_type", "Input should be a valid integer"),
            };
            self.errors.push(error(kind, field, msg, value, None));
            return None;
        };
        let whole = match number {
            LaxNumber::Integer(integer) => Some(integer),
            LaxNumber::Float(float) => whole_float(float),
        };
        if whole.is_none() {
            self.errors.push(error(
                "int_from_float",
                field,
                "Input should be a valid integer, got a number with a fractional part",
                value,
                None,
            ));
        }
        whole
    }

    /// `number` as a `u64` if it lies in `lo..=hi`, or `None` with the bound it breaks recorded.
    fn within(
        &mut self,
        field: &str,
        value: &Value,
        number: i128,
        lo: u64,
        hi: u64,
    ) -> Option<u64> {
        if number < i128::from(lo) {
            self.errors.push(error(
                "greater_than_equal",
                field,
                format!("Input should be greater than or equal to {lo}"),
                value,
                Some(json!({ "ge": lo })),
            ));
            return None;
        }
        if number > i128::from(hi) {
            self.errors.push(error(
                "less_than_equal",
                field,
                format!("Input should be less than or equal to {hi}"),
                value,
                Some(json!({ "le": hi })),
            ));
            return None;
        }
        Some(number as u64)
    }

    fn visitor_id(&mut self) -> Option<&'a str> {
        let visitor_id = self.string("visitorId", MAX_VISITOR_ID_LEN)?;
        if !puzzle::is_valid_visitor_id(visitor_id) {
            self.errors.push(error(
                "value_error",
                "visitorId",
                "Value error, visitorId must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-'",
                &Value::from(visitor_id),
                None,
            ));
            return None;
        }
        Some(visitor_id)
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ => Err(unprocessable(self.errors)),
        }
    }
}

/// A number as pydantic's lax integer mode first reads it.
enum LaxNumber {
    /// An integer, kept exact.
    Integer(i128),
    /// A float, a whole number only if it has no fractional part.
    Float(f64),
}

/// Reads a JSON number or a numeric string; `None` for anything else.
fn lax_number(value: &Value) -> Option<LaxNumber> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .map(|v| LaxNumber::Integer(i128::from(v)))
            .or_else(|| n.as_i64().map(|v| LaxNumber::Integer(i128::from(v))))
            .or_else(|| n.as_f64().map(LaxNumber::Float)),
        Value::String(s) => s.trim().parse::<i128>().ok().map(LaxNumber::Integer),
        _ => None,
    }
}

/// A float without a fractional part as an integer (saturating far out of range); `None` otherwise.
fn whole_float(float: f64) -> Option<i128> {
    if float.fract() != 0.0 {
        None
    } else if float.abs() < 1e30 {
        Some(float as i128)
    } else if float > 0.0 {
        Some(i128::MAX)
    } else {
        Some(i128::MIN)
    }
}

fn unprocessable(errors: Vec<Value>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({ "detail": errors }),
    )
}

/// `POST /api/puzzle` body: `{"visitorId"}`.
pub(crate) fn puzzle_request(body: Option<&Value>) -> Result<String, ApiError> {
    let mut f = Fields::of(body)?;
    let visitor_id = f.visitor_id().map(str::to_string);
    f.finish(visitor_id)
}

/// `POST /api/verify` body (and the solution part of `/api/submit`).
pub(crate) fn solution(body: Option<&Value>) -> Result<Solution, ApiError> {
    let mut f = Fields::of(body)?;
    let solution = solution_fields(&mut f);
    f.finish(solution)
}

fn solution_fields(f: &mut Fields<'_>) -> Option<Solution> {
    let visitor_id = f.visitor_id();
    let nonce = f.integer("nonce", 0, MAX_NONCE);
    let submitted_seed = f.string("submittedSeed", 128);
    let trace_data = f.string("traceData", 2048);
    let hash = f.string("hash", 256).and_then(|h| {
        let parsed = puzzle::parse_hash(h);
        if parsed.is_none() {
            f.errors.push(error(
                "value_error",
                "hash",
                "Value error, hash must be 64 hexadecimal characters",
                &Value::from(h),
                None,
            ));
        }
        parsed
    });
    Some(Solution {
        visitor_id: visitor_id?.to_string(),
        nonce: nonce?,
        submitted_seed: submitted_seed?.to_string(),
        trace_data: trace_data?.to_string(),
        hash: hash?,
    })
}

/// `POST /api/submit` body: a solution plus `leadingZeros` (0..=256).
pub(crate) fn submission(body: Option<&Value>) -> Result<(Solution, u32), ApiError> {
    let mut f = Fields::of(body)?;
    let solution = solution_fields(&mut f);
    let zeros = f.integer("leadingZeros", 0, 256).map(|z| z as u32);
    let both = solution.zip(zeros);
    f.finish(both)
}

/// An admin body: empty means all fields absent; anything unreadable is a 422 naming the problem.
pub(crate) fn admin_body<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
    match parse_json(body).map_err(|e| {
        if e.status == StatusCode::BAD_REQUEST {
            e
        } else {
            ApiError::unprocessable("Request body is not valid JSON")
        }
    })? {
        None | Some(Value::Null) => Ok(T::default()),
        Some(value @ Value::Object(_)) => serde_json::from_value(value)
            .map_err(|e| ApiError::unprocessable(format!("Invalid request body: {e}"))),
        Some(_) => Err(ApiError::unprocessable(
            "Request body must be a JSON object",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Option<Value> {
        Some(v)
    }

    fn valid() -> Value {
        json!({
            "visitorId": "abc_DEF-1",
            "nonce": 42,
            "submittedSeed": "00112233445566778899aabbccddeeff",
            "traceData": "ip=127.0.0.1",
            "hash": "0".repeat(64),
        })
    }

    #[test]
    fn syntax_errors_are_422_and_deep_nesting_400() {
        assert_eq!(
            parse_json(b"{nope").unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let deep = "[".repeat(10_000);
        assert_eq!(
            parse_json(deep.as_bytes()).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(parse_json(b"  ").unwrap(), None);
        assert_eq!(
            parse_json(&[0xff, 0xfe]).unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }

    #[test]
    fn a_valid_solution_parses_with_lax_nonces() {
        let s = solution(body(valid()).as_ref()).unwrap();
        assert_eq!(s.nonce, 42);
        for (nonce, expected) in [
            (json!("5"), 5),
            (json!(5.0), 5),
            (json!(9007199254740992u64), MAX_NONCE),
        ] {
            let mut v = valid();
            v["nonce"] = nonce;
            assert_eq!(solution(body(v).as_ref()).unwrap().nonce, expected);
        }
    }

    #[test]
    fn bad_fields_are_listed() {
        for (field, value, kind) in [
            ("nonce", json!(1.5), "int_from_float"),
            ("nonce", json!("abc"), "int_parsing"),
            ("nonce", json!(-1), "greater_than_equal"),
            ("nonce", json!(9007199254740993u64), "less_than_equal"),
            ("nonce", json!(1e300), "less_than_equal"),
            ("nonce", json!(true), "int_type"),
            ("nonce", json!(null), "int_type"),
            ("hash", json!("xyz"), "value_error"),
            ("hash", json!("a".repeat(300)), "string_too_long"),
            ("visitorId", json!("a|b"), "value_error"),
            ("visitorId", json!(7), "string_type"),
            ("traceData", json!("x".repeat(2049)), "string_too_long"),
        ] {
            let mut v = valid();
            v[field] = value;
            let err = solution(body(v).as_ref()).unwrap_err();
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(err.body["detail"][0]["type"], kind, "{field}");
            assert_eq!(err.body["detail"][0]["loc"], json!(["body", field]));
        }
        let err = solution(body(json!({})).as_ref()).unwrap_err();
        assert_eq!(err.body["detail"].as_array().unwrap().len(), 5);
        assert_eq!(
            solution(None).unwrap_err().body["detail"][0]["type"],
            "missing"
        );
        assert_eq!(
            solution(body(json!([1])).as_ref()).unwrap_err().body["detail"][0]["type"],
            "model_attributes_type"
        );
    }

    #[test]
    fn submission_needs_leading_zeros() {
        let mut v = valid();
        assert!(submission(body(v.clone()).as_ref()).is_err());
        v["leadingZeros"] = json!(3);
        assert_eq!(submission(body(v.clone()).as_ref()).unwrap().1, 3);
        v["leadingZeros"] = json!(257);
        assert!(submission(body(v).as_ref()).is_err());
    }

    #[test]
    fn hash_is_trimmed_and_lowercased() {
        let mut v = valid();
        v["hash"] = json!(format!(" {} ", "AB".repeat(32)));
        assert_eq!(solution(body(v).as_ref()).unwrap().hash, [0xab; 32]);
    }
}
