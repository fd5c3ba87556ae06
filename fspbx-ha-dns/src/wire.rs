//! One DNS exchange over UDP with hickory: shared by the RFC 2136 provider and the propagation
//! checks. Each exchange uses a fresh socket (random source port) and no cache.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use hickory_net::client::Client;
use hickory_net::proto::op::{DnsRequest, DnsRequestOptions, DnsResponse, Message, Query};
use hickory_net::proto::rr::{Name, RecordType, TSigner};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_net::{DnsHandle, NetError};

/// Sends `message` to `server` and returns the first response.
///
/// `retries` is the number of re-sends after a lost datagram; updates use 0 so a lost answer
/// never makes the server apply a change twice.
pub(crate) async fn exchange(
    server: SocketAddr,
    message: Message,
    signer: Option<TSigner>,
    timeout: Duration,
    retries: u8,
) -> Result<DnsResponse, NetError> {
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::new())
        .with_timeout(Some(timeout))
        .with_signer(signer)
        .with_max_retries(retries)
        .build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let task = tokio::spawn(background);
    let mut options = DnsRequestOptions::default();
    options.use_edns = message.edns.is_some();
    let mut responses = client.send(DnsRequest::new(message, options));
    let first = responses.next().await;
    drop(responses);
    drop(client);
    task.abort();
    first.unwrap_or(Err(NetError::Timeout))
}

/// A plain query for `name`/`rtype`; authoritative checks ask with `recursion_desired` off.
pub(crate) fn query_message(name: Name, rtype: RecordType, recursion_desired: bool) -> Message {
    let mut m = Message::query();
    m.add_query(Query::query(name, rtype));
    m.metadata.recursion_desired = recursion_desired;
    m
}
