//! SSH keypairs: generated or imported, private keys sealed at rest and destroyed with
//! the keypair, exported only through an audited call.

mod aggregate;
mod audit;
pub mod codes;
mod comment;
mod http;
pub mod material;
mod plugin;
mod problems;
mod service;
mod used_by;
mod view;

pub use aggregate::{
    KeypairCommand, KeypairError, KeypairEvent, NewComment, NewKeypair, SshKeypair,
};
pub use comment::Comment;
pub use material::KeyAlgorithm;
pub use plugin::KeypairsPlugin;
pub use service::{
    GenerateRequest, ImportRequest, KeypairChanges, KeypairFailure, KeypairService, NAME_KIND,
    PRIVATE_KEY_PURPOSE,
};
pub use used_by::{DependantRegistry, DependantRemover};
pub use view::KeypairView;
