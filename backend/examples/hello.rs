//! The machine's ceiling for the collect benchmark: a poem server answering a JSON POST with a
//! small JSON body, no storage. `bench/run` compares `/collect` against it.

use poem::listener::TcpListener;
use poem::web::Json;
use poem::{Route, Server, handler, post};

#[handler]
fn hello(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "accepted": body.get("e").and_then(|e| e.as_array()).map_or(0, |e| e.len()) }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18080".into());
    Server::new(TcpListener::bind(addr)).run(Route::new().at("/collect", post(hello))).await
}
