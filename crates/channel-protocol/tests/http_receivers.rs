//! The three engines with HTTP receivers, streamed by one generic function
//! as the IO side streams a response body: pieces until `End`, then
//! `receiver_gone`.

use axum_channel_protocol::browserchannel::{self, BackChannelEncoder};
use axum_channel_protocol::sockjs::{self, Attach, ReceiverEncoding, ReceiverKind};
use axum_channel_protocol::{
    event_stream, CloseReason, HttpReceivers, Payload, ReceiverId, Transmit,
};
use std::time::Instant;

/// Writes receiver `id`'s body until it ends or has nothing more, then
/// lets it go; the body as text, and whether it ended.
fn stream<E: HttpReceivers>(engine: &mut E, now: Instant, id: ReceiverId) -> (String, bool) {
    let mut body = String::new();
    let mut ended = false;
    while let Some(transmit) = engine.poll_receiver(now, id) {
        match transmit {
            Transmit::Data { bytes, .. } => body.push_str(std::str::from_utf8(&bytes).unwrap()),
            Transmit::End(tail) => {
                body.push_str(std::str::from_utf8(&tail).unwrap());
                ended = true;
                break;
            }
            other => panic!("an HTTP receiver got {other:?}"),
        }
    }
    engine.receiver_gone(now, id);
    (body, ended)
}

#[test]
fn a_browserchannel_back_channel_goes_and_the_session_waits() {
    let now = Instant::now();
    let config = browserchannel::SessionConfig::default();
    let mut session = browserchannel::Session::new(now, "sid", None, None, config);
    let back = session
        .attach_back_channel(now, BackChannelEncoder::xmlhttp(), false, None)
        .unwrap();
    let (body, ended) = stream(&mut session, now, back);
    assert_eq!(body, "25\n[[0,[\"c\",\"sid\",null,8]]]\n");
    assert!(ended);
    assert!(!session.has_back_channel());
    assert_eq!(axum_channel_protocol::Engine::close_reason(&session), None);
}

#[test]
fn an_abandoned_sockjs_receiver_ends_the_session() {
    let now = Instant::now();
    let mut session = sockjs::Session::new(now, sockjs::SessionConfig::default());
    let streaming = ReceiverKind::Http {
        encoding: ReceiverEncoding::Xhr,
        prelude: String::new(),
        polling: false,
    };
    let Attach::Attached { id, .. } = session.attach_receiver(now, streaming) else {
        panic!("the first receiver attaches");
    };
    let (body, ended) = stream(&mut session, now, id);
    assert_eq!((body.as_str(), ended), ("o\n", false));
    assert_eq!(
        axum_channel_protocol::Engine::close_reason(&session),
        Some(&CloseReason::ConnectionLost)
    );
    assert!(session.is_forgotten());
}

#[test]
fn the_eventsource_stream_going_ends_the_session() {
    let now = Instant::now();
    let mut session = event_stream::Session::new(now, event_stream::SessionConfig::default());
    axum_channel_protocol::Engine::send(&mut session, now, &Payload::text("hi")).unwrap();
    let stream_id = session.stream();
    let (body, ended) = stream(&mut session, now, stream_id);
    assert!(body.ends_with("data: hi\n\n") && !ended);
    assert_eq!(
        axum_channel_protocol::Engine::close_reason(&session),
        Some(&CloseReason::ConnectionLost)
    );
}
