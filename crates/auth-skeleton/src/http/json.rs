//! The JSON body extractor: a size limit checked while reading, and errors as problem details
//! whose detail names the offending field without echoing its value (it may be a password).
//! Also the helper that writes the library's JSON responses.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError as _};
use futures_util::StreamExt as _;
use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::problem::ApiError;

/// The body limit of the auth routes.
pub const AUTH_BODY_LIMIT: usize = 64 * 1024;

/// The body limit for [`Json`] on the routes where it is registered as app data
/// (default [`AUTH_BODY_LIMIT`]).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A JSON request body, deserialised into `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<BodyLimit>().map_or(AUTH_BODY_LIMIT, |l| l.0);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared.is_some_and(|n| n > limit) {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            let body = read_limited(&mut payload, limit).await?;
            parse(&body).map(Json)
        })
    }
}

/// Reads a whole body, refusing it with `413 payload_too_large` as soon as it passes `limit` bytes.
pub async fn read_limited(payload: &mut Payload, limit: usize) -> Result<BytesMut, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|_| ApiError::InvalidRequest("the request body could not be read".into()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Deserialises `body`, which must be a JSON object, turning errors into `invalid_request`
/// with a safe detail.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let Object(value) = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| ApiError::InvalidRequest(describe(&e, body)))?;
    de.end()
        .map_err(|_| ApiError::InvalidRequest(NOT_JSON.to_owned()))?;
    Ok(value)
}

/// A `T` that must be written as a JSON object.
///
/// A struct that derives `Deserialize` also accepts its fields as an array in declaration
/// order (`["notes", "n1", ...]`), which no client of the contract sends and no schema
/// describes; wrap a nested struct in `Object` to refuse that as `invalid_request`. [`parse`]
/// does so for the whole body.
///
/// ```
/// use auth_skeleton::http::json::{Object, parse};
///
/// #[derive(serde::Deserialize)]
/// struct Item {
///     id: String,
/// }
/// #[derive(serde::Deserialize)]
/// struct Batch {
///     items: Vec<Object<Item>>,
/// }
/// assert!(parse::<Batch>(br#"{"items": [{"id": "a"}]}"#).is_ok());
/// assert!(parse::<Batch>(br#"{"items": [["a"]]}"#).is_err());
/// assert!(parse::<Batch>(br#"[[{"id": "a"}]]"#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object<T>(pub T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Object<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }

        deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
    }
}

/// Answers `body` as JSON. The body goes through a `serde_json::Value`, whose objects keep their
/// keys sorted at every level: the order the library's responses have always had on the wire,
/// whatever the order of the fields of the types that document them.
pub(crate) fn reply(mut builder: HttpResponseBuilder, body: &impl Serialize) -> HttpResponse {
    match serde_json::to_value(body) {
        Ok(value) => builder.json(value),
        Err(e) => ApiError::internal(e).error_response(),
    }
}

const NOT_JSON: &str = "the body must be a JSON object";

fn describe(err: &serde_path_to_error::Error<serde_json::Error>, body: &[u8]) -> String {
    let inner = err.inner();
    let path = err.path().to_string();
    if inner.is_syntax() || inner.is_eof() {
        // serde_json reports some wrong types as syntax (`null` where an enum is expected):
        // when the body itself is JSON, the field is what is wrong.
        let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
        return match is_json && path != "." {
            true => format!("{path}: invalid type or value"),
            false => NOT_JSON.to_owned(),
        };
    }
    let message = inner.to_string();
    // serde_json appends " at line L column C"; drop it.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(m, _)| m);
    // "invalid type: string \"hunter2\", expected u64" would echo a value: keep the kind and
    // what was expected.
    let safe = if message.starts_with("invalid ") {
        let kind = message.split(':').next().unwrap_or("invalid value");
        match message.rsplit_once(", expected ") {
            Some((_, expected)) => format!("{kind}, expected {expected}"),
            None => kind.to_owned(),
        }
    } else {
        message.to_owned()
    };
    if path == "." || safe.starts_with("missing field") {
        safe
    } else {
        format!("{path}: {safe}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
        count: Option<u32>,
        #[serde(default)]
        kind: Kind,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        #[default]
        Cookie,
        Bearer,
    }

    fn detail(body: &str) -> String {
        match parse::<Login>(body.as_bytes()) {
            Err(ApiError::InvalidRequest(d)) => d,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn details_name_the_field_and_never_echo_values() {
        assert_eq!(detail(r#"{"email":"a@b.c"}"#), "missing field `password`");
        let d = detail(r#"{"email":"a@b.c","password":"x","count":"hunter2"}"#);
        assert!(d.starts_with("count: invalid type"), "{d}");
        assert!(!d.contains("hunter2"), "{d}");
        let d = detail(r#"{"email":"a@b.c","password":12345678}"#);
        assert!(
            d.starts_with("password: invalid type") && !d.contains("12345678"),
            "{d}"
        );
        assert_eq!(detail("not json"), "the body must be a JSON object");
        assert_eq!(
            detail(r#"{"email":"a@b.c","password":"x","kind":null}"#),
            "kind: invalid type or value",
            "a null where an enum goes names the field"
        );
        assert_eq!(
            detail(r#"{"email":"a@b.c","kind":"#),
            "the body must be a JSON object"
        );
        assert_eq!(detail(""), "the body must be a JSON object");
        assert_eq!(
            detail(r#"{"email":"a","password":"b"} trailing"#),
            "the body must be a JSON object"
        );
    }
}
