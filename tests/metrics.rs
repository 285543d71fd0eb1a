//! The layer's counters and gauges, read through a debugging recorder.

use axum::routing::get;
use axum::Router;
use axum_channel::{ChannelConfig, ChannelLayer, WebSocketConfig};
use channel_tests::{closed, recv, within, TestServer};
use futures::SinkExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Totals of every metric across snapshots: a debugging snapshot hands
/// out what changed since the last one (gauges that only go up and down
/// by steps sum the same way).
struct Totals {
    snapshotter: Snapshotter,
    values: Vec<Total>,
}

/// A metric's name, its labels, and its total.
type Total = (String, Vec<(String, String)>, f64);

impl Totals {
    fn new(snapshotter: Snapshotter) -> Self {
        Self {
            snapshotter,
            values: Vec::new(),
        }
    }

    fn get(&mut self, name: &str, labels: &[(&str, &str)]) -> f64 {
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            let delta = match value {
                DebugValue::Counter(count) => count as f64,
                DebugValue::Gauge(gauge) => gauge.into_inner(),
                DebugValue::Histogram(_) => continue,
            };
            match self
                .values
                .iter_mut()
                .find(|(n, l, _)| n == key.name() && *l == labels)
            {
                Some((_, _, total)) => *total += delta,
                None => self.values.push((key.name().to_owned(), labels, delta)),
            }
        }
        self.values
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, total)| total)
            .sum()
    }
}

#[tokio::test]
async fn sessions_messages_and_bytes_are_counted() {
    let recorder = DebuggingRecorder::new();
    let mut totals = Totals::new(recorder.snapshotter());
    let (sessions_tx, sessions) = tokio::sync::mpsc::unbounded_channel();
    let config = ChannelConfig::new()
        .websocket("/ws", WebSocketConfig::new())
        .on_session(move |session| {
            let _ = sessions_tx.send(session);
            async {}
        });
    // The layer registers its metrics with the recorder installed when it is built.
    let layer = metrics::with_local_recorder(&recorder, || ChannelLayer::new(config));
    let handle = layer.handle();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .layer(layer);
    let mut server = TestServer::serve(app, sessions, handle).await;

    let (mut client, _) = within(tokio_tungstenite::connect_async(format!(
        "ws://{}/ws",
        server.addr
    )))
    .await
    .unwrap()
    .unwrap();
    let mut session = server.next_session().await;
    let open = [("transport", "websocket")];
    assert_eq!(totals.get("channel_sessions_open", &open), 1.0);
    assert_eq!(totals.get("channel_sessions_opened_total", &open), 1.0);

    client.send(WsMessage::text("in")).await.unwrap();
    recv(&mut session).await;
    session.send("out!").await.unwrap();
    assert_eq!(totals.get("channel_messages_received_total", &open), 1.0);
    assert_eq!(totals.get("channel_messages_sent_total", &open), 1.0);
    assert_eq!(totals.get("channel_bytes_sent_total", &open), 4.0);

    session.join("r").await.unwrap();
    server.handle.broadcast("b").to("r").send().await.unwrap();
    assert_eq!(totals.get("channel_broadcasts_total", &[]), 1.0);
    assert_eq!(totals.get("channel_broadcast_recipients_total", &[]), 1.0);

    client.close(None).await.unwrap();
    closed(&session).await;
    server
        .handle
        .shutdown(std::time::Duration::from_secs(5))
        .await;
    assert_eq!(totals.get("channel_sessions_open", &open), 0.0);
    assert_eq!(
        totals.get(
            "channel_sessions_closed_total",
            &[("transport", "websocket"), ("reason", "peer")]
        ),
        1.0
    );
}
