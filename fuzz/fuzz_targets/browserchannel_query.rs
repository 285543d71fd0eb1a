//! `Query::parse` on any query string: it never panics, and what it parsed
//! survives a round trip through a query string of its own.
#![no_main]

use axum_channel_protocol::browserchannel::{Query, RequestId, RequestType};
use libfuzzer_sys::fuzz_target;

/// Writes the fields `Query::parse` keeps back into a query string.
fn serialize(query: &Query) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    let mut put = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            out.append_pair(key, &value);
        }
    };
    put("VER", query.version.clone());
    put("MODE", query.mode.clone());
    put("SID", query.session_id.clone());
    put(
        "RID",
        query.request_id.as_ref().map(|rid| match rid {
            RequestId::Number(n) => n.to_string(),
            RequestId::Rpc => "rpc".to_owned(),
            RequestId::Invalid(s) => s.clone(),
        }),
    );
    put("AID", query.acknowledged_array_id.map(|n| n.to_string()));
    put(
        "TYPE",
        query.request_type.as_ref().map(|t| match t {
            RequestType::XmlHttp => "xmlhttp".to_owned(),
            RequestType::Html => "html".to_owned(),
            RequestType::Terminate => "terminate".to_owned(),
            RequestType::Other(s) => s.clone(),
        }),
    );
    put("CI", query.chunked_mode.clone());
    put("OSID", query.old_session_id.clone());
    put(
        "OAID",
        query.old_acknowledged_array_id.map(|n| n.to_string()),
    );
    put("CVER", query.app_version.clone());
    put("DOMAIN", query.domain.clone());
    out.finish()
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let query = Query::parse(&raw);

    // The helpers agree with the fields they read.
    assert_eq!(query.is_version_8(), query.version.as_deref() == Some("8"));
    assert_eq!(query.is_test_init(), query.mode.as_deref() == Some("init"));
    assert_eq!(
        query.is_chunked(),
        query.chunked_mode.as_deref() == Some("0")
    );
    match &query.request_id {
        Some(RequestId::Number(n)) => assert_eq!(query.request_number(), Some(*n)),
        _ => assert_eq!(query.request_number(), None),
    }
    if let Some(RequestId::Invalid(s)) = &query.request_id {
        assert!(s != "rpc" && s.parse::<u64>().is_err());
    }
    if let Some(RequestType::Other(s)) = &query.request_type {
        assert!(!matches!(s.as_str(), "xmlhttp" | "html" | "terminate"));
    }
    assert!(query.domain().is_none_or(|d| !d.is_empty()));

    // Parsing is a function of the fields it keeps.
    assert_eq!(Query::parse(&serialize(&query)), query);
});
