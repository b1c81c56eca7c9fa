//! Python values in and out.
//!
//! * Mappings and sequences become core types through serde: the Python
//!   value is turned into a `serde_json::Value` (datetimes as RFC 3339 text,
//!   timedeltas as ISO 8601 durations) and deserialized with
//!   `serde_path_to_error`, so that a bad value is reported with its path
//!   (`alerts[0].startsAt: ...`).
//! * Core values go out as plain dicts, lists, str, int, float and bool;
//!   timestamps as timezone-aware UTC `datetime`s where a type is known.
//! * The str enums (`Severity`, `Direction`, ...) are the `enum.StrEnum`
//!   classes of the pure-Python package (`octrix._enums`).

use jiff::{SignedDuration, Timestamp};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyDateTime, PyDelta, PyDict, PyFloat, PyInt, PyList, PyMapping, PyModule, PyString,
    PyTuple, PyTzInfoAccess,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

use crate::errors::Error;

/// `prefix` and a serde path joined: `payload` + `alerts[0]` →
/// `payload.alerts[0]`; an empty prefix leaves the path alone.
pub fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path) {
        (true, "" | ".") => ".".to_owned(),
        (true, _) => path.to_owned(),
        (false, "" | ".") => prefix.to_owned(),
        (false, _) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, _) => format!("{prefix}.{path}"),
    }
}

/// A Python value as JSON, naming `path` in errors.
pub fn to_value(object: &Bound<'_, PyAny>, path: &str) -> Result<Value, Error> {
    if object.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(flag) = object.cast::<PyBool>() {
        return Ok(Value::Bool(flag.is_true()));
    }
    if object.is_instance_of::<PyInt>() {
        if let Ok(number) = object.extract::<i64>() {
            return Ok(Value::from(number));
        }
        if let Ok(number) = object.extract::<u64>() {
            return Ok(Value::from(number));
        }
        return Err(Error::input(join("", path), "integer out of range"));
    }
    if let Ok(number) = object.cast::<PyFloat>() {
        let number = number.value();
        return Number::from_f64(number).map(Value::Number).ok_or_else(|| {
            Error::input(join("", path), format!("{number} is not a finite number"))
        });
    }
    if let Ok(text) = object.cast::<PyString>() {
        return Ok(Value::String(
            text.to_cow().map_err(|e| bad(path, e))?.into_owned(),
        ));
    }
    if object.is_instance_of::<PyDateTime>() {
        return Ok(Value::String(timestamp(object, path)?.to_string()));
    }
    if object.is_instance_of::<PyDelta>() {
        let duration: SignedDuration = object.extract().map_err(|e| bad(path, e))?;
        return Ok(Value::String(duration.to_string()));
    }
    if let Ok(mapping) = object.cast::<PyMapping>() {
        let mut map = Map::new();
        for item in mapping.items().map_err(|e| bad(path, e))?.iter() {
            let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
                item.extract().map_err(|e| bad(path, e))?;
            let Ok(key) = key.extract::<String>() else {
                return Err(Error::input(
                    join("", path),
                    format!("keys must be str, found {}", type_name(&key)),
                ));
            };
            let value = to_value(&value, &join(path, &key))?;
            map.insert(key, value);
        }
        return Ok(Value::Object(map));
    }
    if object.is_instance_of::<PyList>() || object.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (index, item) in object.try_iter().map_err(|e| bad(path, e))?.enumerate() {
            let item = item.map_err(|e| bad(path, e))?;
            items.push(to_value(&item, &format!("{path}[{index}]"))?);
        }
        return Ok(Value::Array(items));
    }
    Err(Error::input(
        join("", path),
        format!("unsupported type {}", type_name(object)),
    ))
}

fn bad(path: &str, error: PyErr) -> Error {
    Error::input(join("", path), error.to_string())
}

/// The name of an object's type, for messages.
pub fn type_name(object: &Bound<'_, PyAny>) -> String {
    object
        .get_type()
        .name()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

/// Deserializes a core type from a Python value; `prefix` (an argument
/// name, or empty) starts every field path in errors.
pub fn from_py<T: DeserializeOwned>(object: &Bound<'_, PyAny>, prefix: &str) -> Result<T, Error> {
    let value = to_value(object, prefix)?;
    deserialize(value, prefix, Error::input)
}

/// Deserializes a core type from JSON made of a Python value, naming the
/// field (after `prefix`) in errors.
pub fn from_value<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, Error> {
    deserialize(value, prefix, Error::input)
}

/// Deserializes `value`, building the error with `make(path, message)`.
fn deserialize<T: DeserializeOwned>(
    value: Value,
    prefix: &str,
    make: fn(String, String) -> Error,
) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        make(join(prefix, &path), error.into_inner().to_string())
    })
}

/// Deserializes a configuration from a Python mapping: errors are
/// `ConfigError`s naming the field.
pub fn config_from_py<T: DeserializeOwned>(
    object: &Bound<'_, PyAny>,
    prefix: &str,
) -> Result<T, Error> {
    let value = to_value(object, prefix).map_err(|error| match error {
        Error::Input { field, message } => Error::Config { field, message },
        other => other,
    })?;
    deserialize(value, prefix, config_error)
}

fn config_error(field: String, message: String) -> Error {
    Error::Config { field, message }
}

/// Parses a YAML configuration, naming the field in errors.
pub fn config_from_yaml<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    let deserializer = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let field = join("", &error.path().to_string());
        let message = error.into_inner().to_string();
        // The YAML parser puts the path in front of its own messages.
        let message = match message.strip_prefix(&format!("{field}: ")) {
            Some(rest) => rest.to_owned(),
            None => message,
        };
        Error::Config { field, message }
    })
}

/// Parses a TOML configuration, naming the field in errors.
pub fn config_from_toml<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    let deserializer = toml::de::Deserializer::parse(text).map_err(|error| Error::Config {
        field: ".".to_owned(),
        message: error.to_string(),
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|error| Error::Config {
        field: join("", &error.path().to_string()),
        message: error.into_inner().to_string(),
    })
}

/// A JSON value as a Python object.
pub fn value_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(flag) => PyBool::new(py, *flag).to_owned().into_any(),
        Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                integer.into_pyobject(py)?.into_any()
            } else if let Some(integer) = number.as_u64() {
                integer.into_pyobject(py)?.into_any()
            } else {
                number
                    .as_f64()
                    .unwrap_or(f64::NAN)
                    .into_pyobject(py)?
                    .into_any()
            }
        }
        Value::String(text) => PyString::new(py, text).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(value_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, value_to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// A serializable core value as a Python dict (or list, str, ...).
pub fn to_py<'py, T: Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(value)
        .map_err(|error| Error::input(".", format!("cannot serialize: {error}")))?;
    value_to_py(py, &value)
}

/// Replaces `dict[key]`, if present, by the UTC datetime of the timestamp
/// it holds (as RFC 3339 text), or sets it to `None` when `at` is `None`.
pub fn set_time(dict: &Bound<'_, PyDict>, key: &str, at: Option<Timestamp>) -> PyResult<()> {
    if dict.contains(key)? {
        dict.set_item(key, at)?;
    }
    Ok(())
}

/// A timezone-aware `datetime` as a timestamp; a naive one is refused,
/// naming `field`.
pub fn timestamp(object: &Bound<'_, PyAny>, field: &str) -> Result<Timestamp, Error> {
    let datetime = object.cast::<PyDateTime>().map_err(|_| {
        Error::input(
            join("", field),
            format!(
                "expected a timezone-aware datetime, found {}",
                type_name(object)
            ),
        )
    })?;
    if datetime.get_tzinfo().is_none() {
        return Err(Error::input(
            join("", field),
            "expected a timezone-aware datetime, found a naive one (set tzinfo, e.g. datetime.timezone.utc)",
        ));
    }
    object
        .extract::<Timestamp>()
        .map_err(|error| Error::input(join("", field), error.to_string()))
}

/// The timestamp of an optional `datetime` argument, the current time when
/// it is `None`.
pub fn timestamp_or_now(
    object: Option<&Bound<'_, PyAny>>,
    field: &str,
) -> Result<Timestamp, Error> {
    match object {
        Some(object) if !object.is_none() => timestamp(object, field),
        _ => Ok(Timestamp::now()),
    }
}

/// An optional `datetime` argument; `None` stays `None`.
pub fn optional_timestamp(
    object: Option<&Bound<'_, PyAny>>,
    field: &str,
) -> Result<Option<Timestamp>, Error> {
    match object {
        Some(object) if !object.is_none() => timestamp(object, field).map(Some),
        _ => Ok(None),
    }
}

/// Parses a str enum value (`"medium"`, or a `Severity` member) into the
/// core type through serde, naming `field` on error.
pub fn parse_enum<T: DeserializeOwned>(object: &Bound<'_, PyAny>, field: &str) -> Result<T, Error> {
    let Ok(text) = object.extract::<String>() else {
        return Err(Error::input(
            field,
            format!("expected str, found {}", type_name(object)),
        ));
    };
    parse_name(&text, field)
}

/// Parses a str enum value given as text, naming `field` on error.
pub fn parse_name<T: DeserializeOwned>(text: &str, field: &str) -> Result<T, Error> {
    serde_json::from_value(Value::String(text.to_owned()))
        .map_err(|_| Error::input(field, format!("unknown value {text:?}")))
}

/// One str value or a sequence of them, each parsed as an enum.
pub fn parse_enums<T: DeserializeOwned>(
    object: Option<&Bound<'_, PyAny>>,
    field: &str,
) -> Result<Vec<T>, Error> {
    let Some(object) = object.filter(|object| !object.is_none()) else {
        return Ok(Vec::new());
    };
    if object.is_instance_of::<PyString>() {
        return Ok(vec![parse_enum(object, field)?]);
    }
    let items = object
        .try_iter()
        .map_err(|_| Error::input(field, "expected str or a sequence of str"))?;
    let mut values = Vec::new();
    for (index, item) in items.enumerate() {
        let item = item.map_err(|error| Error::input(field, error.to_string()))?;
        values.push(parse_enum(&item, &format!("{field}[{index}]"))?);
    }
    Ok(values)
}

/// The str enum member `class_name(value)` of `octrix._enums`.
pub fn enum_member<'py>(
    py: Python<'py>,
    class_name: &str,
    value: &str,
) -> PyResult<Bound<'py, PyAny>> {
    static ENUMS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module = ENUMS.get_or_try_init(py, || {
        PyResult::Ok(PyModule::import(py, "octrix._enums")?.unbind())
    })?;
    module.bind(py).getattr(class_name)?.call1((value,))
}

/// The serde name of a unit-variant enum value (`Severity::Medium` →
/// `"medium"`).
pub fn serde_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    }
}

/// A unit-variant enum value as its Python str enum member.
pub fn enum_to_py<'py, T: Serialize>(
    py: Python<'py>,
    class_name: &str,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    enum_member(py, class_name, &serde_name(value))
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn paths_join_an_argument_name_and_a_serde_path() {
        assert_eq!(join("", "alerts[0].startsAt"), "alerts[0].startsAt");
        assert_eq!(join("", "."), ".");
        assert_eq!(join("incident", "."), "incident");
        assert_eq!(join("incident", "category"), "incident.category");
        assert_eq!(join("values", "[3]"), "values[3]");
    }
}
