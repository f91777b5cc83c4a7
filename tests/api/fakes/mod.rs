//! Local stand-ins for the other side of a login: identity providers on random ports, with
//! switches for misbehaviour, and the user's browser.
mod browser;
pub mod github;
pub mod oidc;

pub use browser::{Browser, NAVIGATION};

use std::net::SocketAddr;

use poem::{Endpoint, Server, listener::TcpAcceptor};

/// Serves `ep` on a random loopback port until the test ends.
pub async fn serve(ep: impl Endpoint + 'static) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(Server::new_with_acceptor(acceptor).run(ep));
    addr
}
