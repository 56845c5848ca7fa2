//! The admin panel on the server side: its built assets (`assets`), and turning stored rows
//! into what the panel shows (`present`): the replay's pointer samples, event descriptions,
//! signals with their rule explainers. The HTTP handlers are in `api/panel/`.

pub mod assets;
pub mod maps;
pub mod present;
